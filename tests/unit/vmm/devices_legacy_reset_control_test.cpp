#include "vmm/devices/legacy/reset_control.h"

#include <gtest/gtest.h>

#include <array>

#include "vmm/arch/x86_64/ports.h"

namespace corral::vmm {
namespace {

class ResetControlTest : public ::testing::Test {
protected:
    uint8_t in() {
        uint8_t value = 0;
        device.read(0, std::span<uint8_t>(&value, 1));
        return value;
    }
    void out(uint8_t value) { device.write(0, std::span<const uint8_t>(&value, 1)); }

    int resets = 0;
    ResetControl device{[this] { resets++; }};
};

TEST_F(ResetControlTest, AcpiResetValueResets) {
    out(x86::k_reset_control_value);
    EXPECT_EQ(resets, 1);
}

TEST_F(ResetControlTest, SystemResetBitAloneDoesNot) {
    out(0x02);
    EXPECT_EQ(resets, 0);
    EXPECT_EQ(in(), 0x02);
}

TEST_F(ResetControlTest, LinuxRebootSequencesResetOnce) {
    // arch/x86/kernel/reboot.c, BOOT_CF9_FORCE: read, SYS_RST, then the reset code.
    for (uint8_t reboot_code : {uint8_t{0x06}, uint8_t{0x0E}}) {
        resets = 0;
        uint8_t cf9 = in() & ~reboot_code;
        out(cf9 | 0x02);
        out(cf9 | reboot_code);
        EXPECT_EQ(resets, 1) << "reboot code " << int(reboot_code);
        EXPECT_EQ(in() & 0x04, 0) << "RST_CPU never reads back";
    }
}

TEST_F(ResetControlTest, ReadsTheLastValueWithoutRstCpu) {
    out(0x0E);
    EXPECT_EQ(in(), 0x0A);
    out(0x06);
    EXPECT_EQ(resets, 2) << "each write with RST_CPU is a new 0 -> 1 transition";
}

TEST_F(ResetControlTest, WideAccessesTouchOnlyTheRegister) {
    std::array<uint8_t, 4> bytes = {0x02, 0x06, 0x06, 0x06};
    device.write(0, bytes);
    EXPECT_EQ(resets, 0) << "bytes past 0xCF9 are not this register's";
    device.read(0, bytes);
    EXPECT_EQ(bytes, (std::array<uint8_t, 4>{0x02, 0xFF, 0xFF, 0xFF}));
}

}  // namespace
}  // namespace corral::vmm
