#include "vmm/boot/initrd.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "vmm/arch/x86_64/layout.h"

namespace corral::vmm {
namespace {

using namespace x86;
using ::testing::HasSubstr;

GuestMemory make_memory(uint64_t size) {
    auto memory = GuestMemory::create(size);
    EXPECT_TRUE(memory) << memory.error().describe();
    return std::move(*memory);
}

TEST(Initrd, GoesAsHighAsPossiblePageAligned) {
    auto memory = make_memory(128 * MiB);
    auto address = place_initrd(memory, 5 * MiB + 123, 20 * MiB, 0x7fffffff);
    ASSERT_TRUE(address) << address.error().message();
    EXPECT_EQ(*address, (128 * MiB - (5 * MiB + 123)) & ~uint64_t{0xfff});
    EXPECT_EQ(*address % 4096, 0u);
    EXPECT_LE(*address + 5 * MiB + 123, 128 * MiB);
}

TEST(Initrd, RespectsInitrdAddrMax) {
    auto memory = make_memory(256 * MiB);
    // initrd_addr_max is the last byte's address: the initrd must end at or below 64 MiB.
    auto address = place_initrd(memory, 1 * MiB, 20 * MiB, 64 * MiB - 1);
    ASSERT_TRUE(address);
    EXPECT_EQ(*address, 63 * MiB);
}

TEST(Initrd, StaysBelowThePciHole) {
    auto memory = make_memory(4 * GiB);
    auto address = place_initrd(memory, 10 * MiB, 60 * MiB, 0xffffffff);
    ASSERT_TRUE(address);
    EXPECT_EQ(*address, k_pci_hole_start - 10 * MiB);
}

TEST(Initrd, RejectsInitrdThatDoesNotFit) {
    auto memory = make_memory(64 * MiB);
    auto address = place_initrd(memory, 50 * MiB, 0x2e00000, 0x7fffffff);
    ASSERT_FALSE(address);
    EXPECT_EQ(address.error().message(),
              "initrd (50 MiB) does not fit in guest memory between the kernel end (0x2e00000) and "
              "0x4000000; raise --memory");
    // Larger than all of memory: no underflow into a huge address.
    EXPECT_FALSE(place_initrd(memory, 1 * GiB, 2 * MiB, 0x7fffffff));
}

TEST(Initrd, BlamesInitrdAddrMaxWhenThatIsTheLimit) {
    auto memory = make_memory(4 * GiB);
    auto address = place_initrd(memory, 2 * GiB, 60 * MiB, 0x7fffffff);
    ASSERT_FALSE(address);
    EXPECT_THAT(address.error().message(),
                HasSubstr("and 0x80000000; the kernel's initrd_addr_max allows no higher address"));
}

TEST(Initrd, RejectsEmptyInitrd) {
    auto memory = make_memory(64 * MiB);
    auto address = place_initrd(memory, 0, 2 * MiB, 0x7fffffff);
    ASSERT_FALSE(address);
    EXPECT_EQ(address.error().message(), "initrd is empty");
}

TEST(Initrd, NeverGoesBelowOneMiB) {
    auto memory = make_memory(2 * MiB);
    EXPECT_TRUE(place_initrd(memory, 1 * MiB, 0, 0x7fffffff));
    EXPECT_FALSE(place_initrd(memory, 1 * MiB + 1, 0, 0x7fffffff));
}

TEST(Initrd, LoadCopiesBytes) {
    auto memory = make_memory(32 * MiB);
    std::vector<uint8_t> initrd(10000);
    for (size_t i = 0; i < initrd.size(); ++i)
        initrd[i] = static_cast<uint8_t>(i * 13);
    auto location = load_initrd(memory, initrd, 4 * MiB, 0x7fffffff);
    ASSERT_TRUE(location) << location.error().message();
    EXPECT_EQ(location->size, initrd.size());
    std::vector<uint8_t> back(initrd.size());
    ASSERT_TRUE(memory.read(location->address, back));
    EXPECT_EQ(back, initrd);
}

}  // namespace
}  // namespace corral::vmm
