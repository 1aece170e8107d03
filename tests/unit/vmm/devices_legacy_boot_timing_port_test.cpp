#include "vmm/devices/legacy/boot_timing_port.h"

#include <gtest/gtest.h>

#include <array>

namespace corral::vmm {
namespace {

using namespace std::chrono_literals;

class BootTimingPortTest : public ::testing::Test {
protected:
    void out(uint8_t code) { port.write(0, std::span<const uint8_t>(&code, 1)); }

    std::chrono::nanoseconds now = 0ns;
    BootTimingPort port{[this] { return now; }};
};

TEST_F(BootTimingPortTest, RecordsCodesWithTheirTime) {
    now = 12'345'678ns;
    out(1);
    now = 250ms;
    out(123);
    auto marks = port.marks();
    ASSERT_EQ(marks.size(), 2u);
    EXPECT_EQ(marks[0].code, 1);
    EXPECT_EQ(marks[0].time, 12'345'678ns);
    EXPECT_EQ(marks[1].code, 123);
    EXPECT_EQ(marks[1].time, 250ms);
    EXPECT_EQ(port.mark_count(), 2u);
}

TEST_F(BootTimingPortTest, StoredMarksAreBounded) {
    for (int i = 0; i < 1000; ++i) {
        now += 1ms;
        out(static_cast<uint8_t>(i));
    }
    auto marks = port.marks();
    ASSERT_EQ(marks.size(), BootTimingPort::k_max_stored_marks);
    EXPECT_EQ(marks.back().code, BootTimingPort::k_max_stored_marks - 1) << "the first ones kept";
    EXPECT_EQ(port.mark_count(), 1000u);
}

TEST_F(BootTimingPortTest, ReadsZero) {
    std::array<uint8_t, 2> bytes{0x11, 0x11};
    port.read(0, bytes);
    EXPECT_EQ(bytes, (std::array<uint8_t, 2>{0x00, 0xFF})) << "second byte is past the port";
}

TEST_F(BootTimingPortTest, AWideWriteIsOneMark) {
    std::array<uint8_t, 4> bytes{7, 8, 9, 10};
    port.write(0, bytes);
    ASSERT_EQ(port.marks().size(), 1u);
    EXPECT_EQ(port.marks()[0].code, 7);
}

TEST(BootTimingPort, DefaultClockCountsFromConstruction) {
    auto before = std::chrono::steady_clock::now();
    BootTimingPort port;
    uint8_t code = 9;
    port.write(0, std::span<const uint8_t>(&code, 1));
    auto elapsed = std::chrono::steady_clock::now() - before;
    ASSERT_EQ(port.marks().size(), 1u);
    EXPECT_GE(port.marks()[0].time, 0ns);
    EXPECT_LE(port.marks()[0].time, elapsed);
}

TEST(BootTimingPort, ClockSinceCountsFromTheGivenStart) {
    auto start = std::chrono::steady_clock::now() - 5s;
    auto clock = BootTimingPort::clock_since(start);
    EXPECT_GE(clock(), 5s);
    EXPECT_LT(clock(), 60s);
}

}  // namespace
}  // namespace corral::vmm
