#include "vmm/arch/x86_64/e820.h"

#include <gtest/gtest.h>

#include "vmm/arch/x86_64/layout.h"

namespace corral::vmm::x86 {
namespace {

struct Expected {
    uint64_t addr;
    uint64_t size;
    uint32_t type;
};

void expect_map(const std::vector<boot_e820_entry>& map, const std::vector<Expected>& expected) {
    ASSERT_EQ(map.size(), expected.size());
    for (size_t i = 0; i < map.size(); ++i) {
        EXPECT_EQ(map[i].addr, expected[i].addr) << "entry " << i;
        EXPECT_EQ(map[i].size, expected[i].size) << "entry " << i;
        EXPECT_EQ(map[i].type, expected[i].type) << "entry " << i;
    }
}

TEST(E820, MapFor128MiB) {
    auto memory = GuestMemory::create(128 * MiB);
    ASSERT_TRUE(memory);
    expect_map(build_e820_map(*memory),
               {
                   {0, k_ebda_start, k_e820_ram},
                   {k_ebda_start, 0x100000 - k_ebda_start, k_e820_reserved},
                   {0x100000, 127 * MiB, k_e820_ram},
               });
}

TEST(E820, MapFor4GiBSplitsAroundThePciHole) {
    auto memory = GuestMemory::create(4 * GiB);
    ASSERT_TRUE(memory);
    expect_map(build_e820_map(*memory),
               {
                   {0, k_ebda_start, k_e820_ram},
                   {k_ebda_start, 0x100000 - k_ebda_start, k_e820_reserved},
                   {0x100000, 3 * GiB - 1 * MiB, k_e820_ram},
                   {4 * GiB, 1 * GiB, k_e820_ram},
               });
}

TEST(E820, TinyMemoryKeepsTheLegacyAreaReserved) {
    MemoryRegion region{0, 512 * KiB, nullptr};
    expect_map(build_e820_map(std::span(&region, 1)),
               {
                   {0, 512 * KiB, k_e820_ram},
                   {k_ebda_start, 0x100000 - k_ebda_start, k_e820_reserved},
               });
}

}  // namespace
}  // namespace corral::vmm::x86
