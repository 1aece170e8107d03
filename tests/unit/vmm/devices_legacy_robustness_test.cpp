// Random guest accesses against every legacy device: any offset, width and value must be
// handled (the guest is hostile), and the device must still work afterwards.

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "vmm/devices/legacy/acpi_power.h"
#include "vmm/devices/legacy/boot_timing_port.h"
#include "vmm/devices/legacy/i8042.h"
#include "vmm/devices/legacy/reset_control.h"
#include "vmm/devices/legacy/rtc.h"
#include "vmm/devices/legacy/serial.h"

namespace corral::vmm {
namespace {

constexpr int k_accesses = 200'000;

struct CountingLine final : InterruptLine {
    void set_level(bool high) override {
        // A device only reports changes.
        EXPECT_NE(high, level);
        level = high;
    }
    bool level = false;
};

/// One random access to `device`: mostly inside its `length` ports or just past them, sometimes
/// at offsets no bus would pass; 1, 2, 4 or 8 bytes wide; random data.
void random_access(BusDevice& device, uint64_t length, std::mt19937_64& random) {
    uint64_t offset;
    switch (random() % 8) {
        case 0:
            offset = std::numeric_limits<uint64_t>::max() - random() % 8;
            break;
        case 1:
            offset = random();
            break;
        default:
            offset = random() % (length + 4);
            break;
    }
    static constexpr std::array<size_t, 4> k_widths = {1, 2, 4, 8};
    size_t width = k_widths[random() % k_widths.size()];
    std::array<uint8_t, 8> bytes{};
    for (auto& byte : bytes)
        byte = static_cast<uint8_t>(random());
    if (random() % 2) {
        device.read(offset, std::span(bytes.data(), width));
    } else {
        device.write(offset, std::span<const uint8_t>(bytes.data(), width));
    }
}

uint8_t in(BusDevice& device, uint64_t offset) {
    uint8_t value = 0;
    device.read(offset, std::span<uint8_t>(&value, 1));
    return value;
}

void out(BusDevice& device, uint64_t offset, uint8_t value) {
    device.write(offset, std::span<const uint8_t>(&value, 1));
}

TEST(SerialRobustness, RandomAccessesThenTheConsoleStillWorks) {
    CountingLine irq;
    std::string output;
    Serial serial(
        &irq, [&](std::span<const uint8_t> bytes) { output.append(bytes.begin(), bytes.end()); });
    std::mt19937_64 random(0x8250);
    for (int i = 0; i < k_accesses; ++i) {
        random_access(serial, 8, random);
        if (random() % 64 == 0) {
            std::array<uint8_t, 100> input{};
            serial.enqueue_input(std::span(input.data(), random() % input.size()));
        }
        ASSERT_LE(serial.input_space(), Serial::k_input_capacity);
    }

    // What Linux's 8250 driver does on open, then one byte each way.
    out(serial, 3, 0x03);  // LCR: 8N1, DLAB off
    out(serial, 4, 0x0B);  // MCR: DTR, RTS, OUT2, no loopback
    out(serial, 2, 0x07);  // FCR: enable, clear both FIFOs
    out(serial, 1, 0x00);  // IER
    for (size_t i = 0; i <= Serial::k_input_capacity && (in(serial, 5) & 0x01); ++i)
        in(serial, 0);
    EXPECT_EQ(in(serial, 5), 0x60) << "drained: THRE and TEMT only";
    EXPECT_EQ(in(serial, 2), 0xC1);
    EXPECT_FALSE(irq.level);
    output.clear();
    out(serial, 0, 'k');
    EXPECT_EQ(output, "k");
    uint8_t q = 'q';
    ASSERT_EQ(serial.enqueue_input(std::span<const uint8_t>(&q, 1)), 1u);
    EXPECT_EQ(in(serial, 0), 'q');
}

TEST(I8042Robustness, RandomAccessesThenTheControllerStillAnswers) {
    int resets = 0;
    CountingLine keyboard_irq;
    CountingLine aux_irq;
    I8042 controller([&] { resets++; }, &keyboard_irq, &aux_irq);
    std::mt19937_64 random(0x8042);
    for (int i = 0; i < k_accesses; ++i)
        random_access(controller, 5, random);
    EXPECT_GT(resets, 0) << "random commands include 0xF0-0xFE pulses";

    int resets_before = resets;
    out(controller, 4, 0xAA);
    EXPECT_EQ(in(controller, 4) & 0x01, 0x01);
    EXPECT_EQ(in(controller, 0), 0x55);
    EXPECT_EQ(in(controller, 4) & 0x01, 0x00);
    out(controller, 4, 0xFE);
    EXPECT_EQ(resets, resets_before + 1);
}

TEST(RtcRobustness, RandomAccessesThenTheClockStillReads) {
    auto now = std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 365 * 54);
    Rtc rtc([&] { return now; });
    std::mt19937_64 random(0x146818);
    for (int i = 0; i < k_accesses; ++i) {
        random_access(rtc, 2, random);
        if (i % 1000 == 0)
            now += std::chrono::seconds(random() % 100'000);
    }
    out(rtc, 0, 0x0B);
    out(rtc, 1, 0x02);  // BCD, 24 hours, SET clear
    out(rtc, 0, 0x0D);
    EXPECT_EQ(in(rtc, 1), 0x80);
    out(rtc, 0, 0x00);
    uint8_t seconds = in(rtc, 1);
    EXPECT_LE(seconds >> 4, 5);
    EXPECT_LE(seconds & 0x0F, 9);
}

TEST(BootTimingRobustness, RandomAccessesKeepMarksBounded) {
    BootTimingPort port([] { return std::chrono::nanoseconds(1); });
    std::mt19937_64 random(0x402);
    for (int i = 0; i < k_accesses; ++i)
        random_access(port, 1, random);
    EXPECT_EQ(port.marks().size(), BootTimingPort::k_max_stored_marks);
    EXPECT_GT(port.mark_count(), BootTimingPort::k_max_stored_marks);
    EXPECT_EQ(in(port, 0), 0);
}

TEST(AcpiPowerRobustness, RandomAccesses) {
    int power_offs = 0;
    AcpiSleepControl device([&] { power_offs++; });
    std::mt19937_64 random(0x600);
    for (int i = 0; i < k_accesses; ++i)
        random_access(device, 2, random);
    EXPECT_GT(power_offs, 0);
    out(device, 1, 0x80);
    EXPECT_EQ(in(device, 1), 0);
    EXPECT_EQ(in(device, 0), 0);
}

TEST(ResetControlRobustness, RandomAccesses) {
    int resets = 0;
    ResetControl device([&] { resets++; });
    std::mt19937_64 random(0xCF9);
    for (int i = 0; i < k_accesses; ++i)
        random_access(device, 1, random);
    EXPECT_GT(resets, 0);
    EXPECT_EQ(in(device, 0) & 0x04, 0);
}

}  // namespace
}  // namespace corral::vmm
