#include "vmm/devices/legacy/acpi_power.h"

#include <gtest/gtest.h>

#include <array>

#include "vmm/arch/x86_64/ports.h"

namespace corral::vmm {
namespace {

// Offsets within the device (0x600, 0x601) and bits from ACPI 6.4 §4.8.3.7 (ACPICA's names).
constexpr uint64_t SLEEP_CONTROL = 0, SLEEP_STATUS = 1;
constexpr uint8_t ACPI_X_SLEEP_ENABLE = 0x20, ACPI_X_WAKE_STATUS = 0x80;

constexpr uint8_t sleep_request(uint8_t sleep_type) {
    return static_cast<uint8_t>(sleep_type << 2) | ACPI_X_SLEEP_ENABLE;
}

class AcpiPowerTest : public ::testing::Test {
protected:
    uint8_t in(uint64_t offset) {
        uint8_t value = 0;
        device.read(offset, std::span<uint8_t>(&value, 1));
        return value;
    }
    void out(uint64_t offset, uint8_t value) {
        device.write(offset, std::span<const uint8_t>(&value, 1));
    }

    int power_offs = 0;
    AcpiSleepControl device{[this] { power_offs++; }};
};

TEST_F(AcpiPowerTest, S5WritePowersOff) {
    // acpi_hw_extended_sleep(): clear WAK_STS, then SLP_TYP | SLP_EN.
    out(SLEEP_STATUS, ACPI_X_WAKE_STATUS);
    out(SLEEP_CONTROL, sleep_request(x86::k_acpi_s5_sleep_type));
    EXPECT_EQ(power_offs, 1);
    EXPECT_EQ(sleep_request(x86::k_acpi_s5_sleep_type), 0x34);
}

TEST_F(AcpiPowerTest, SleepTypeWithoutSleepEnableDoesNothing) {
    out(SLEEP_CONTROL, static_cast<uint8_t>(x86::k_acpi_s5_sleep_type << 2));
    EXPECT_EQ(power_offs, 0);
    EXPECT_EQ(in(SLEEP_STATUS), 0);
}

TEST_F(AcpiPowerTest, UnsupportedSleepWakesAtOnce) {
    EXPECT_EQ(in(SLEEP_STATUS), 0);
    out(SLEEP_CONTROL, sleep_request(3));
    EXPECT_EQ(power_offs, 0);
    EXPECT_EQ(in(SLEEP_STATUS), ACPI_X_WAKE_STATUS)
        << "Linux spins on WAK_STS after a sleep request";
    out(SLEEP_STATUS, 0x00);
    EXPECT_EQ(in(SLEEP_STATUS), ACPI_X_WAKE_STATUS) << "only writing 1 clears it";
    out(SLEEP_STATUS, ACPI_X_WAKE_STATUS);
    EXPECT_EQ(in(SLEEP_STATUS), 0);
}

TEST_F(AcpiPowerTest, SleepControlReadsZero) {
    out(SLEEP_CONTROL, static_cast<uint8_t>(x86::k_acpi_s5_sleep_type << 2));
    EXPECT_EQ(in(SLEEP_CONTROL), 0);
}

TEST_F(AcpiPowerTest, WordWriteCoversBothRegisters) {
    out(SLEEP_CONTROL, sleep_request(1));
    ASSERT_EQ(in(SLEEP_STATUS), ACPI_X_WAKE_STATUS);
    std::array<uint8_t, 2> bytes = {sleep_request(x86::k_acpi_s5_sleep_type), ACPI_X_WAKE_STATUS};
    device.write(SLEEP_CONTROL, bytes);
    EXPECT_EQ(power_offs, 1);
    EXPECT_EQ(in(SLEEP_STATUS), 0);
}

}  // namespace
}  // namespace corral::vmm
