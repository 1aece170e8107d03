#include "vmm/devices/legacy/i8042.h"

#include <gtest/gtest.h>

#include <array>
#include <optional>

namespace corral::vmm {
namespace {

// Offsets within the device (0x60 and 0x64) and bits as Linux's i8042.h names them.
constexpr uint64_t DATA = 0, COMMAND = 4, STATUS = 4;
constexpr uint8_t STR_OBF = 0x01, STR_IBF = 0x02, STR_SYSFLAG = 0x04, STR_CMDDAT = 0x08,
                  STR_KEYLOCK = 0x10, STR_AUXDATA = 0x20, STR_TIMEOUT = 0x40;
constexpr uint8_t CTR_KBDINT = 0x01, CTR_AUXINT = 0x02, CTR_SYSFLAG = 0x04, CTR_KBDDIS = 0x10,
                  CTR_AUXDIS = 0x20, CTR_XLATE = 0x40;
constexpr uint8_t CMD_CTL_RCTR = 0x20, CMD_CTL_WCTR = 0x60, CMD_AUX_DISABLE = 0xA7,
                  CMD_AUX_ENABLE = 0xA8, CMD_AUX_TEST = 0xA9, CMD_CTL_TEST = 0xAA,
                  CMD_KBD_TEST = 0xAB, CMD_KBD_DISABLE = 0xAD, CMD_KBD_ENABLE = 0xAE,
                  CMD_READ_OUTPUT = 0xD0, CMD_WRITE_OUTPUT = 0xD1, CMD_KBD_LOOP = 0xD2,
                  CMD_AUX_LOOP = 0xD3, CMD_AUX_SEND = 0xD4, CMD_PULSE_RESET = 0xFE;

/// Records the level the device drives an interrupt line to.
struct RecordingLine final : InterruptLine {
    void set_level(bool high) override { level = high; }
    bool level = false;
};

class I8042Test : public ::testing::Test {
protected:
    uint8_t in(uint64_t offset) {
        uint8_t value = 0;
        controller.read(offset, std::span<uint8_t>(&value, 1));
        return value;
    }
    void out(uint64_t offset, uint8_t value) {
        controller.write(offset, std::span<const uint8_t>(&value, 1));
    }
    /// i8042_command() in Linux: command, optional parameter, optional answer (polled).
    std::optional<uint8_t> command(uint8_t command, std::optional<uint8_t> parameter = {}) {
        EXPECT_EQ(in(STATUS)&STR_IBF, 0);
        out(COMMAND, command);
        if (parameter)
            out(DATA, *parameter);
        if (!(in(STATUS)&STR_OBF))
            return std::nullopt;
        return in(DATA);
    }

    int resets = 0;
    RecordingLine keyboard_irq;
    RecordingLine aux_irq;
    I8042 controller{[this] { resets++; }, &keyboard_irq, &aux_irq};
};

TEST_F(I8042Test, StatusAfterFirmware) {
    // Nothing to read, system flag set by the firmware's self-test, key lock open.
    EXPECT_EQ(in(STATUS), STR_SYSFLAG | STR_KEYLOCK);
}

TEST_F(I8042Test, SelfTestAnswers0x55) {
    out(COMMAND, CMD_CTL_TEST);
    EXPECT_EQ(in(STATUS) & (STR_OBF | STR_CMDDAT), STR_OBF | STR_CMDDAT);
    EXPECT_EQ(in(DATA), 0x55);
    EXPECT_EQ(in(STATUS)&STR_OBF, 0);
}

TEST_F(I8042Test, CommandByteRoundTrip) {
    auto initial = command(CMD_CTL_RCTR);
    ASSERT_TRUE(initial);
    EXPECT_EQ(*initial, CTR_KBDINT | CTR_SYSFLAG | CTR_AUXDIS | CTR_XLATE);
    out(COMMAND, CMD_CTL_WCTR);
    out(DATA, 0x47);
    EXPECT_EQ(in(STATUS) & (STR_OBF | STR_CMDDAT), 0) << "data write, no answer";
    EXPECT_EQ(command(CMD_CTL_RCTR), 0x47);
    // The command byte's system flag shows in the status register.
    command(CMD_CTL_WCTR, 0x47 & ~CTR_SYSFLAG);
    EXPECT_EQ(in(STATUS)&STR_SYSFLAG, 0);
    command(CMD_CTL_TEST);
    EXPECT_EQ(in(STATUS)&STR_SYSFLAG, STR_SYSFLAG) << "a passed self-test sets it again";
}

TEST_F(I8042Test, ControllerRamBeyondTheCommandByte) {
    command(0x61, 0x99);
    EXPECT_EQ(command(0x21), 0x99);
    EXPECT_EQ(command(0x3F), 0x00);
}

TEST_F(I8042Test, InterfaceTestsPass) {
    EXPECT_EQ(command(CMD_KBD_TEST), 0x00);
    EXPECT_EQ(command(CMD_AUX_TEST), 0x00);
}

TEST_F(I8042Test, PortEnableAndDisableShowInTheCommandByte) {
    command(CMD_KBD_DISABLE);
    EXPECT_EQ(*command(CMD_CTL_RCTR) & CTR_KBDDIS, CTR_KBDDIS);
    command(CMD_KBD_ENABLE);
    EXPECT_EQ(*command(CMD_CTL_RCTR) & CTR_KBDDIS, 0);
    command(CMD_AUX_ENABLE);
    EXPECT_EQ(*command(CMD_CTL_RCTR) & CTR_AUXDIS, 0);
    command(CMD_AUX_DISABLE);
    EXPECT_EQ(*command(CMD_CTL_RCTR) & CTR_AUXDIS, CTR_AUXDIS);
}

TEST_F(I8042Test, PulseResetCommandResetsExactlyOnce) {
    out(COMMAND, CMD_PULSE_RESET);
    EXPECT_EQ(resets, 1);
    out(COMMAND, 0xFF);  // pulses no line
    EXPECT_EQ(resets, 1);
    EXPECT_EQ(in(STATUS)&STR_OBF, 0);
}

TEST_F(I8042Test, OutputPortWriteWithResetBitClearResets) {
    uint8_t port = *command(CMD_READ_OUTPUT);
    EXPECT_EQ(port & 0x03, 0x03) << "reset line inactive, A20 on";
    command(CMD_WRITE_OUTPUT, 0x03);
    EXPECT_EQ(resets, 0);
    command(CMD_WRITE_OUTPUT, 0x02);  // bit 0 low: assert reset
    EXPECT_EQ(resets, 1);
    command(CMD_WRITE_OUTPUT, 0x01);  // A20 off, no reset
    EXPECT_EQ(resets, 1);
    EXPECT_EQ(command(CMD_READ_OUTPUT), 0x01);
}

TEST_F(I8042Test, EmptyDataPortReadsTheLastValue) {
    EXPECT_EQ(command(CMD_CTL_TEST), 0x55);
    EXPECT_EQ(in(STATUS)&STR_OBF, 0);
    EXPECT_EQ(in(DATA), 0x55);
    EXPECT_EQ(in(DATA), 0x55);
}

TEST_F(I8042Test, AuxLoopbackComesBackAsAuxDataOnIrq12) {
    // Linux's AUX probe: the loop command must answer from the AUX side, and (once the AUX
    // interrupt is enabled) on IRQ 12.
    EXPECT_EQ(command(CMD_AUX_LOOP, 0x5A), 0x5A);
    EXPECT_FALSE(aux_irq.level) << "AUX interrupt disabled in the command byte";

    command(CMD_CTL_WCTR, CTR_AUXINT | CTR_SYSFLAG);
    out(COMMAND, CMD_AUX_LOOP);
    out(DATA, 0xA5);
    EXPECT_EQ(in(STATUS) & (STR_OBF | STR_AUXDATA), STR_OBF | STR_AUXDATA);
    EXPECT_TRUE(aux_irq.level);
    EXPECT_FALSE(keyboard_irq.level);
    EXPECT_EQ(in(DATA), 0xA5);
    EXPECT_FALSE(aux_irq.level);
}

TEST_F(I8042Test, KeyboardLoopbackRaisesIrq1) {
    out(COMMAND, CMD_KBD_LOOP);
    out(DATA, 0x1C);
    EXPECT_EQ(in(STATUS) & (STR_OBF | STR_AUXDATA), STR_OBF);
    EXPECT_TRUE(keyboard_irq.level);
    EXPECT_EQ(in(DATA), 0x1C);
    EXPECT_FALSE(keyboard_irq.level);
}

TEST_F(I8042Test, BytesForAbsentDevicesTimeOut) {
    // atkbd's GET ID: no keyboard, so a transmit time-out, which libps2 takes as a NAK.
    command(CMD_KBD_DISABLE);
    out(DATA, 0xF2);
    EXPECT_EQ(in(STATUS) & (STR_OBF | STR_TIMEOUT | STR_AUXDATA), STR_OBF | STR_TIMEOUT);
    EXPECT_TRUE(keyboard_irq.level);
    EXPECT_EQ(in(DATA), 0xFE);
    EXPECT_EQ(in(STATUS)&STR_TIMEOUT, 0);
    EXPECT_EQ(*command(CMD_CTL_RCTR) & CTR_KBDDIS, 0) << "writing to the keyboard enables it";

    out(COMMAND, CMD_AUX_SEND);
    out(DATA, 0xFF);
    EXPECT_EQ(in(STATUS) & (STR_OBF | STR_TIMEOUT | STR_AUXDATA),
              STR_OBF | STR_TIMEOUT | STR_AUXDATA);
    EXPECT_EQ(in(DATA), 0xFE);
}

TEST_F(I8042Test, ANewAnswerReplacesAnUnreadOne) {
    out(DATA, 0xF2);  // time-out nobody reads
    EXPECT_EQ(command(CMD_CTL_RCTR), CTR_KBDINT | CTR_SYSFLAG | CTR_AUXDIS | CTR_XLATE);
    EXPECT_EQ(in(STATUS)&STR_OBF, 0);
}

TEST_F(I8042Test, LinuxProbeSequence) {
    // i8042_controller_check(): flush until OBF is clear.
    int flushed = 0;
    while ((in(STATUS)&STR_OBF) && flushed < 16) {
        in(DATA);
        flushed++;
    }
    EXPECT_LT(flushed, 16);
    // i8042_controller_selftest(), then i8042_controller_init(): two equal CTR reads.
    EXPECT_EQ(command(CMD_CTL_TEST), 0x55);
    auto ctr = command(CMD_CTL_RCTR);
    ASSERT_TRUE(ctr);
    EXPECT_EQ(command(CMD_CTL_RCTR), ctr);
    EXPECT_EQ(in(STATUS)&STR_KEYLOCK, STR_KEYLOCK);
    uint8_t new_ctr = (*ctr | CTR_KBDDIS) & ~CTR_KBDINT;
    command(CMD_CTL_WCTR, new_ctr);
    // i8042_check_aux(): loop test, then the bit assignment test through the command byte.
    EXPECT_EQ(command(CMD_AUX_LOOP, 0x5A), 0x5A);
    command(CMD_AUX_DISABLE);
    EXPECT_EQ(*command(CMD_CTL_RCTR) & CTR_AUXDIS, CTR_AUXDIS);
    command(CMD_AUX_ENABLE);
    EXPECT_EQ(*command(CMD_CTL_RCTR) & CTR_AUXDIS, 0);
    // i8042_check_mux(): a plain controller echoes all three bytes, the last included.
    EXPECT_EQ(command(CMD_AUX_LOOP, 0xF0), 0xF0);
    EXPECT_EQ(command(CMD_AUX_LOOP, 0x56), 0x56);
    EXPECT_EQ(command(CMD_AUX_LOOP, 0xA4), 0xA4);
    EXPECT_EQ(resets, 0);
}

TEST_F(I8042Test, WideAccessesAreSplitIntoBytes) {
    std::array<uint8_t, 4> bytes{};
    out(COMMAND, CMD_CTL_TEST);
    controller.read(DATA, bytes);  // 0x60, then three ports that are not the controller's
    EXPECT_EQ(bytes, (std::array<uint8_t, 4>{0x55, 0xFF, 0xFF, 0xFF}));
    controller.read(3, bytes);  // 0x63 (nobody), 0x64 (status), then past the device
    EXPECT_EQ(bytes[0], 0xFF);
    EXPECT_EQ(bytes[1], STR_SYSFLAG | STR_KEYLOCK | STR_CMDDAT);
    EXPECT_EQ(bytes[2], 0xFF);
}

TEST(I8042, WorksWithoutInterruptLinesOrCallback) {
    I8042 controller({});
    uint8_t value = CMD_PULSE_RESET;
    controller.write(COMMAND, std::span<const uint8_t>(&value, 1));
    value = 0xF2;
    controller.write(DATA, std::span<const uint8_t>(&value, 1));
    controller.read(DATA, std::span<uint8_t>(&value, 1));
    EXPECT_EQ(value, 0xFE);
}

}  // namespace
}  // namespace corral::vmm
