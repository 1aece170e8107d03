#include "vmm/memory/guest_memory.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "vmm/arch/x86_64/layout.h"

namespace corral::vmm {
namespace {

using namespace x86;

TEST(GuestMemory, SmallRamIsOneRegion) {
    auto memory = GuestMemory::create(64 * MiB);
    ASSERT_TRUE(memory);
    ASSERT_EQ(memory->regions().size(), 1u);
    EXPECT_EQ(memory->regions()[0].guest_address, 0u);
    EXPECT_EQ(memory->regions()[0].size, 64 * MiB);
}

TEST(GuestMemory, LargeRamSkipsThePciHole) {
    auto memory = GuestMemory::create(4 * GiB);
    ASSERT_TRUE(memory);
    ASSERT_EQ(memory->regions().size(), 2u);
    EXPECT_EQ(memory->regions()[0].end(), k_pci_hole_start);
    EXPECT_EQ(memory->regions()[1].guest_address, k_high_memory_start);
    EXPECT_EQ(memory->regions()[1].size, 1 * GiB);
    EXPECT_EQ(memory->host_pointer(k_pci_hole_start, 1), nullptr);
    EXPECT_NE(memory->host_pointer(k_high_memory_start, 4096), nullptr);
}

TEST(GuestMemory, HostPointerChecksBounds) {
    auto memory = GuestMemory::create(1 * MiB);
    ASSERT_TRUE(memory);
    EXPECT_NE(memory->host_pointer(1 * MiB - 4, 4), nullptr);
    EXPECT_EQ(memory->host_pointer(1 * MiB - 4, 5), nullptr);
    EXPECT_EQ(memory->host_pointer(1 * MiB, 1), nullptr);
    // Lengths chosen to overflow a naive address + length check.
    EXPECT_EQ(memory->host_pointer(16, UINT64_MAX), nullptr);
    EXPECT_EQ(memory->host_pointer(UINT64_MAX, 2), nullptr);
}

TEST(GuestMemory, ReadWriteRoundTrip) {
    auto memory = GuestMemory::create(1 * MiB);
    ASSERT_TRUE(memory);
    ASSERT_TRUE(memory->write_object<uint32_t>(0x1000, 0xdeadbeef));
    EXPECT_EQ(*memory->read_object<uint32_t>(0x1000), 0xdeadbeefu);
    std::array<uint8_t, 8> bytes{};
    auto outside = memory->read(1 * MiB - 4, bytes);
    ASSERT_FALSE(outside);
    EXPECT_NE(outside.error().message().find("is not guest RAM"), std::string::npos);
}

TEST(GuestMemory, DeviceWritesAreLoggedOnlyWhileAMigrationAsksAndTakenOnce) {
    // 3.5 GiB of RAM: 3 GiB below the PCI hole (the exact split is layout.h's), the rest at 4 GiB.
    auto memory = GuestMemory::create(3584 * MiB);
    ASSERT_TRUE(memory);
    uint8_t* low = memory->host_pointer(0x5000, 4096);
    uint8_t* high = memory->host_pointer(4 * GiB + 0x2000, 4096);
    ASSERT_TRUE(low && high);
    memory->note_device_write(low, 16);
    memory->start_device_write_log();
    EXPECT_TRUE(memory->take_device_writes().empty()) << "writes before the start are not logged";
    memory->note_device_write(low + 4000, 200);  // straddles two pages
    memory->note_device_write(high, 1);
    memory->note_device_write(low, 0);  // nothing written
    EXPECT_EQ(memory->take_device_writes(), (std::vector<uint64_t>{0x5000, 0x6000, 4 * GiB + 0x2000}));
    EXPECT_TRUE(memory->take_device_writes().empty()) << "taking clears";
    memory->stop_device_write_log();
    memory->note_device_write(high, 1);
    EXPECT_TRUE(memory->take_device_writes().empty()) << "nothing after the stop";
}

}  // namespace
}  // namespace corral::vmm
