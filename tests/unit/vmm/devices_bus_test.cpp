#include "vmm/devices/bus.h"

#include <gtest/gtest.h>

#include <vector>

namespace corral::vmm {
namespace {

class RecordingDevice final : public BusDevice {
public:
    void read(uint64_t offset, std::span<uint8_t> data) override {
        reads.push_back(offset);
        std::fill(data.begin(), data.end(), static_cast<uint8_t>(offset));
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        writes.push_back({offset, data[0]});
    }
    std::vector<uint64_t> reads;
    std::vector<std::pair<uint64_t, uint8_t>> writes;
};

TEST(Bus, DevicesSeeOffsets) {
    Bus bus;
    auto device = std::make_shared<RecordingDevice>();
    ASSERT_TRUE(bus.insert(0x3F8, 8, device));
    uint8_t byte = 0;
    EXPECT_TRUE(bus.read(0x3FD, std::span(&byte, 1)));
    EXPECT_EQ(byte, 5);
    uint8_t value = 0x41;
    EXPECT_TRUE(bus.write(0x3F8, std::span<const uint8_t>(&value, 1)));
    ASSERT_EQ(device->writes.size(), 1u);
    EXPECT_EQ(device->writes[0].first, 0u);
    EXPECT_FALSE(bus.read(0x3F7, std::span(&byte, 1)));
    EXPECT_FALSE(bus.read(0x400, std::span(&byte, 1)));
}

TEST(Bus, RejectsOverlaps) {
    Bus bus;
    ASSERT_TRUE(bus.insert(0x60, 5, std::make_shared<RecordingDevice>()));
    EXPECT_FALSE(bus.insert(0x64, 1, std::make_shared<RecordingDevice>()));
    EXPECT_FALSE(bus.insert(0x5F, 2, std::make_shared<RecordingDevice>()));
    EXPECT_FALSE(bus.insert(0x100, 0, std::make_shared<RecordingDevice>()));
    EXPECT_TRUE(bus.insert(0x65, 1, std::make_shared<RecordingDevice>()));
}

}  // namespace
}  // namespace corral::vmm
