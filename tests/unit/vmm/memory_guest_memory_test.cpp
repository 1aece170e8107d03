#include "vmm/memory/guest_memory.h"

#include <gtest/gtest.h>

#include <array>

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

}  // namespace
}  // namespace corral::vmm
