#include "vmm/devices/legacy/i8042.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <optional>
#include <random>
#include <thread>
#include <vector>

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

using Bytes = std::vector<uint8_t>;

/// Records the level the device drives an interrupt line to, and its rising edges (what the
/// edge-triggered PIC/IOAPIC turns into interrupts).
struct RecordingLine final : InterruptLine {
    void set_level(bool high) override {
        if (high && !level)
            rises++;
        level = high;
    }
    bool level = false;
    int rises = 0;
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

    /// Takes keyboard bytes the way Linux's i8042_interrupt() does: one byte per IRQ 1 edge.
    Bytes read_by_interrupt() {
        Bytes bytes;
        while (keyboard_irq.level && bytes.size() < 64) {
            EXPECT_EQ(in(STATUS) & (STR_OBF | STR_AUXDATA | STR_TIMEOUT), STR_OBF);
            bytes.push_back(in(DATA));
        }
        EXPECT_EQ(in(STATUS)&STR_OBF, 0);
        return bytes;
    }
    /// libps2's ps2_sendbyte(): one byte to the keyboard, then its answers, each by interrupt.
    Bytes to_keyboard(uint8_t byte) {
        EXPECT_EQ(in(STATUS)&STR_IBF, 0);
        int rises_before = keyboard_irq.rises;
        out(DATA, byte);
        Bytes answers = read_by_interrupt();
        EXPECT_EQ(keyboard_irq.rises - rises_before, static_cast<int>(answers.size()))
            << "one IRQ 1 edge per byte";
        return answers;
    }
    /// What Linux's i8042 driver does before atkbd starts: flush, self-test, then the command
    /// byte with the keyboard port enabled, its interrupt on and translation left on.
    void linux_i8042_init() {
        while (in(STATUS)&STR_OBF)
            in(DATA);
        ASSERT_EQ(command(CMD_CTL_TEST), 0x55);
        uint8_t ctr = *command(CMD_CTL_RCTR);
        command(CMD_CTL_WCTR, (ctr | CTR_KBDDIS) & ~CTR_KBDINT);
        // i8042_enable_kbd_port()
        ctr = (ctr & ~CTR_KBDDIS) | CTR_KBDINT;
        command(CMD_CTL_WCTR, ctr);
        ASSERT_EQ(*command(CMD_CTL_RCTR) & (CTR_XLATE | CTR_KBDINT | CTR_KBDDIS),
                  CTR_XLATE | CTR_KBDINT);
    }
    /// atkbd_connect() on x86 with translation: probe (GET ID, deactivate), reset_state (LEDs,
    /// typematic), activate.
    void atkbd_connect() {
        EXPECT_EQ(to_keyboard(0xF2), (Bytes{0xFA, 0xAB, 0x41})) << "ID 0xAB 0x83, translated";
        EXPECT_EQ(to_keyboard(0xF5), (Bytes{0xFA}));
        EXPECT_EQ(to_keyboard(0xED), (Bytes{0xFA}));
        EXPECT_EQ(to_keyboard(0x00), (Bytes{0xFA}));
        EXPECT_EQ(to_keyboard(0xF3), (Bytes{0xFA}));
        EXPECT_EQ(to_keyboard(0x00), (Bytes{0xFA}));
        EXPECT_EQ(to_keyboard(0xF4), (Bytes{0xFA}));
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

TEST_F(I8042Test, BytesForTheAbsentMouseTimeOut) {
    // psmouse's first command: no mouse, so a transmit time-out, which libps2 takes as a NAK.
    out(COMMAND, CMD_AUX_SEND);
    out(DATA, 0xFF);
    EXPECT_EQ(in(STATUS) & (STR_OBF | STR_TIMEOUT | STR_AUXDATA),
              STR_OBF | STR_TIMEOUT | STR_AUXDATA);
    EXPECT_EQ(in(DATA), 0xFE);
    EXPECT_EQ(in(STATUS) & (STR_OBF | STR_TIMEOUT), 0);
}

TEST_F(I8042Test, WritingToTheKeyboardEnablesItsPort) {
    command(CMD_KBD_DISABLE);
    out(DATA, 0xEE);  // echo
    EXPECT_EQ(*command(CMD_CTL_RCTR) & CTR_KBDDIS, 0);
}

TEST_F(I8042Test, ANewAnswerReplacesAnUnreadOne) {
    out(COMMAND, CMD_AUX_SEND);
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

// ---- The keyboard behind the controller

TEST_F(I8042Test, AtkbdProbeAsLinuxDoesIt) {
    linux_i8042_init();
    // atkbd.reset=1 (the default off x86) resets first: ACK, then the self-test result.
    EXPECT_EQ(to_keyboard(0xFF), (Bytes{0xFA, 0xAA}));
    atkbd_connect();
    // A caps lock LED change later on.
    EXPECT_EQ(to_keyboard(0xED), (Bytes{0xFA}));
    EXPECT_EQ(to_keyboard(0x04), (Bytes{0xFA}));
    EXPECT_EQ(to_keyboard(0xEE), (Bytes{0xEE})) << "echo";
    EXPECT_EQ(to_keyboard(0xF7), (Bytes{0xFE})) << "set 3 command: not supported";
    EXPECT_EQ(resets, 0);
}

TEST_F(I8042Test, WithoutTranslationTheKeyboardSpeaksSet2) {
    linux_i8042_init();
    uint8_t ctr = *command(CMD_CTL_RCTR);
    command(CMD_CTL_WCTR, ctr & ~CTR_XLATE);
    EXPECT_EQ(to_keyboard(0xF2), (Bytes{0xFA, 0xAB, 0x83}));
    EXPECT_EQ(to_keyboard(0xF0), (Bytes{0xFA}));
    EXPECT_EQ(to_keyboard(0x00), (Bytes{0xFA, 0x02})) << "get scan code set";
    ASSERT_TRUE(controller.send_ctrl_alt_del());
    EXPECT_EQ(read_by_interrupt(),
              (Bytes{0x14, 0x11, 0xE0, 0x71, 0xE0, 0xF0, 0x71, 0xF0, 0x11, 0xF0, 0x14}));
}

TEST_F(I8042Test, CtrlAltDelIsSet1WithOneIrqEdgePerByte) {
    linux_i8042_init();
    atkbd_connect();
    int rises_before = keyboard_irq.rises;
    ASSERT_TRUE(controller.send_ctrl_alt_del());
    EXPECT_TRUE(keyboard_irq.level);
    // Ctrl, Alt, Delete (E0 53) down; then Delete, Alt, Ctrl up.
    EXPECT_EQ(read_by_interrupt(), (Bytes{0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D}));
    EXPECT_EQ(keyboard_irq.rises - rises_before, 8);
    EXPECT_FALSE(keyboard_irq.level);
    EXPECT_FALSE(aux_irq.level);
}

TEST_F(I8042Test, CtrlAltDelWithTheKeyboardInterruptOffIsPolled) {
    linux_i8042_init();
    atkbd_connect();
    command(CMD_CTL_WCTR, *command(CMD_CTL_RCTR) & ~CTR_KBDINT);
    int rises_before = keyboard_irq.rises;
    ASSERT_TRUE(controller.send_ctrl_alt_del());
    EXPECT_FALSE(keyboard_irq.level);
    Bytes bytes;
    while ((in(STATUS)&STR_OBF) && bytes.size() < 16)
        bytes.push_back(in(DATA));
    EXPECT_EQ(bytes, (Bytes{0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D}));
    EXPECT_EQ(keyboard_irq.rises, rises_before);
}

TEST_F(I8042Test, KeyboardPortDisabledHoldsKeysUntilEnabled) {
    linux_i8042_init();
    atkbd_connect();
    command(CMD_KBD_DISABLE);
    ASSERT_TRUE(controller.send_ctrl_alt_del());
    EXPECT_EQ(in(STATUS)&STR_OBF, 0);
    EXPECT_FALSE(keyboard_irq.level);
    out(COMMAND, CMD_KBD_ENABLE);  // not command(): that would read the first key
    EXPECT_EQ(read_by_interrupt(), (Bytes{0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D}));

    // The same through the command byte's disable bit.
    uint8_t ctr = *command(CMD_CTL_RCTR);
    command(CMD_CTL_WCTR, ctr | CTR_KBDDIS);
    ASSERT_TRUE(controller.send_ctrl_alt_del());
    EXPECT_EQ(in(STATUS)&STR_OBF, 0);
    out(COMMAND, CMD_CTL_WCTR);
    out(DATA, ctr);
    EXPECT_EQ(read_by_interrupt().size(), 8u);
}

TEST_F(I8042Test, NoKeysWhileTheKeyboardIsNotScanning) {
    linux_i8042_init();
    EXPECT_EQ(to_keyboard(0xF5), (Bytes{0xFA}));  // atkbd_deactivate()
    EXPECT_FALSE(controller.send_ctrl_alt_del());
    EXPECT_EQ(in(STATUS)&STR_OBF, 0);
    EXPECT_EQ(to_keyboard(0xF4), (Bytes{0xFA}));  // atkbd_activate()
    EXPECT_TRUE(controller.send_ctrl_alt_del());
}

TEST_F(I8042Test, KeyboardQueueIsBoundedAndLinuxCanStillFlushIt) {
    // Nobody reads: the output buffer holds one byte, the keyboard at most 15 more.
    EXPECT_TRUE(controller.send_ctrl_alt_del());
    EXPECT_TRUE(controller.send_ctrl_alt_del());
    EXPECT_FALSE(controller.send_ctrl_alt_del()) << "no room for a whole sequence";
    // i8042_flush() reads at most 16 bytes before it gives up on the controller.
    int flushed = 0;
    while ((in(STATUS)&STR_OBF) && flushed < 17) {
        in(DATA);
        flushed++;
    }
    EXPECT_EQ(flushed, 16);
    EXPECT_TRUE(controller.send_ctrl_alt_del());
}

TEST_F(I8042Test, AKeyboardCommandDropsKeysNotYetSent) {
    linux_i8042_init();
    atkbd_connect();
    command(CMD_KBD_DISABLE);
    ASSERT_TRUE(controller.send_ctrl_alt_del());
    // libps2 waits for the ACK: it must be the first byte (writing data re-enables the port).
    EXPECT_EQ(to_keyboard(0xF4), (Bytes{0xFA}));
}

TEST_F(I8042Test, KeyboardResetAnswersAckThenSelfTest) {
    linux_i8042_init();
    EXPECT_EQ(to_keyboard(0xF5), (Bytes{0xFA}));
    EXPECT_EQ(to_keyboard(0xFF), (Bytes{0xFA, 0xAA}));
    EXPECT_TRUE(controller.send_ctrl_alt_del()) << "a reset keyboard scans";
}

TEST_F(I8042Test, CtrlAltDelFromAnotherThreadWhileTheGuestPolls) {
    linux_i8042_init();
    atkbd_connect();
    std::atomic<bool> done{false};
    std::thread host([&] {
        for (int i = 0; i < 200; ++i)
            controller.send_ctrl_alt_del();
        done = true;
    });
    size_t bytes = 0;
    while (!done || (in(STATUS)&STR_OBF)) {
        if (in(STATUS)&STR_OBF) {
            in(DATA);
            bytes++;
        }
    }
    host.join();
    EXPECT_EQ(bytes % 8, 0u) << "sequences arrive whole";
    EXPECT_GE(bytes, 8u);
}

TEST_F(I8042Test, RandomAccessesAndKeyPressesThenTheKeyboardStillProbes) {
    std::mt19937_64 random(0x8042'2);
    for (int i = 0; i < 100'000; ++i) {
        uint64_t offset = random() % 6;
        uint8_t value = static_cast<uint8_t>(random());
        if (random() % 2) {
            in(offset);
        } else if (random() % 64 == 0) {
            controller.send_ctrl_alt_del();
        } else if (value != CMD_PULSE_RESET) {
            out(offset, value);
        }
    }
    // Whatever state the guest left: Linux's probe and atkbd work again.
    command(CMD_CTL_WCTR, CTR_KBDINT | CTR_SYSFLAG | CTR_AUXDIS | CTR_XLATE);
    linux_i8042_init();
    EXPECT_EQ(to_keyboard(0xFF), (Bytes{0xFA, 0xAA}));
    atkbd_connect();
    ASSERT_TRUE(controller.send_ctrl_alt_del());
    EXPECT_EQ(read_by_interrupt(), (Bytes{0x1D, 0x38, 0xE0, 0x53, 0xE0, 0xD3, 0xB8, 0x9D}));
}

TEST(I8042, WorksWithoutInterruptLinesOrCallback) {
    I8042 controller({});
    uint8_t value = CMD_PULSE_RESET;
    controller.write(COMMAND, std::span<const uint8_t>(&value, 1));
    value = 0xF2;
    controller.write(DATA, std::span<const uint8_t>(&value, 1));
    controller.read(DATA, std::span<uint8_t>(&value, 1));
    EXPECT_EQ(value, 0xFA);
    EXPECT_TRUE(controller.send_ctrl_alt_del());
}

}  // namespace
}  // namespace corral::vmm
