#include "vmm/arch/x86_64/long_mode.h"

#include <gtest/gtest.h>

#include <array>

#include "vmm/arch/x86_64/layout.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm::x86 {
namespace {

TEST(LongMode, PageTablesIdentityMapFirstFourGiB) {
    auto memory = GuestMemory::create(16 * MiB);
    ASSERT_TRUE(memory);
    ASSERT_TRUE(write_identity_page_tables(*memory));
    // Walk the tables for a few addresses as the MMU would.
    for (uint64_t address : {0x0ull, 0x100000ull, 0x7fe00000ull, 0xFEE00000ull, 0xFFFFF000ull}) {
        uint64_t pml4e = *memory->read_object<uint64_t>(k_pml4_address + ((address >> 39) & 511) * 8);
        ASSERT_TRUE(pml4e & 1);
        uint64_t pdpte = *memory->read_object<uint64_t>((pml4e & ~0xFFFull) + ((address >> 30) & 511) * 8);
        ASSERT_TRUE(pdpte & 1);
        uint64_t pde = *memory->read_object<uint64_t>((pdpte & ~0xFFFull) + ((address >> 21) & 511) * 8);
        ASSERT_TRUE(pde & 1);
        ASSERT_TRUE(pde & (1 << 7)) << "2 MiB page expected";
        EXPECT_EQ((pde & ~0x1FFFFFull) | (address & 0x1FFFFF), address);
    }
}

TEST(LongMode, SregsEnterLongModeWithFlatSegments) {
    kvm_sregs reset{};
    auto sregs = long_mode_sregs(reset);
    EXPECT_TRUE(sregs.cr0 & 1);             // PE
    EXPECT_TRUE(sregs.cr0 & (1ull << 31));  // PG
    EXPECT_TRUE(sregs.cr4 & (1ull << 5));   // PAE
    EXPECT_EQ(sregs.efer & 0x500, 0x500u);  // LME | LMA
    EXPECT_EQ(sregs.cr3, k_pml4_address);
    EXPECT_EQ(sregs.cs.selector, k_code64_selector);
    EXPECT_EQ(sregs.cs.l, 1);
    EXPECT_EQ(sregs.cs.db, 0);
    EXPECT_EQ(sregs.cs.present, 1);
    EXPECT_EQ(sregs.ds.selector, k_data_selector);
    EXPECT_EQ(sregs.ds.limit, 0xFFFFFFFFu);
    EXPECT_EQ(sregs.tr.type, 11);  // busy TSS
    EXPECT_EQ(sregs.gdt.base, k_gdt_address);
}

TEST(LongMode, RegsFollowThe64BitBootProtocol) {
    auto regs = long_mode_regs(0x100200, k_boot_params_address);
    EXPECT_EQ(regs.rip, 0x100200u);
    EXPECT_EQ(regs.rsi, k_boot_params_address);
    EXPECT_EQ(regs.rflags, 2u);  // interrupts disabled
}

TEST(LongMode, GdtMatchesTheSelectors) {
    auto memory = GuestMemory::create(16 * MiB);
    ASSERT_TRUE(memory);
    ASSERT_TRUE(write_boot_gdt(*memory));
    EXPECT_EQ(*memory->read_object<uint64_t>(k_gdt_address + k_code64_selector), 0x00AF9B000000FFFFull);
    EXPECT_EQ(*memory->read_object<uint64_t>(k_gdt_address + k_data_selector), 0x00CF93000000FFFFull);
}

}  // namespace
}  // namespace corral::vmm::x86

#include "vmm/arch/x86_64/reset_vector.h"

namespace corral::vmm::x86 {
namespace {

TEST(ResetVector, StubResetsThroughPortCf9) {
    auto memory = GuestMemory::create(16 * MiB);
    ASSERT_TRUE(memory);
    ASSERT_TRUE(write_reset_vector_stub(*memory));
    std::array<uint8_t, 6> code{};
    ASSERT_TRUE(memory->read(k_reset_vector_address, code));
    EXPECT_EQ(code, (std::array<uint8_t, 6>{0xBA, 0xF9, 0x0C, 0xB0, 0x06, 0xEE}));
}

}  // namespace
}  // namespace corral::vmm::x86
