#include "vmm/boot/kernel_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>

#include "boot_test_kernels.h"
#include "vmm/arch/x86_64/layout.h"

namespace corral::vmm {
namespace {

using namespace testing;
using namespace x86;
using ::testing::HasSubstr;

GuestMemory make_memory(uint64_t size) {
    auto memory = GuestMemory::create(size);
    EXPECT_TRUE(memory) << memory.error().describe();
    return std::move(*memory);
}

Result<LoadedKernel> parse_and_load(const GuestMemory& memory, const std::vector<uint8_t>& file) {
    auto image = TRY(parse_kernel_image(file));
    return load_kernel(memory, image, file);
}

TEST(KernelLoader, LoadsBzImageAtOneMiB) {
    auto memory = make_memory(64 * MiB);
    auto file = make_bzimage();
    auto loaded = parse_and_load(memory, file);
    ASSERT_TRUE(loaded) << loaded.error().message();
    // boot.rst, "64-bit Boot Protocol": entry at the load address + 0x200.
    EXPECT_EQ(loaded->entry, 0x100200u);
    EXPECT_EQ(loaded->load_address, k_kernel_load_address);
    // Relocatable, pref_address 1 MiB, alignment 2 MiB: decompresses at 2 MiB.
    EXPECT_EQ(loaded->end, 2 * MiB + 0x20000);
    EXPECT_EQ(loaded->setup_header.size(), 0x26cu - 0x1f1u);
    const uint8_t* host = memory.host_pointer(k_kernel_load_address, 0x3000);
    ASSERT_NE(host, nullptr);
    for (uint64_t i = 0; i < 0x3000; ++i)
        ASSERT_EQ(host[i], payload_byte(i)) << i;
    EXPECT_EQ(host[0x3000], 0);  // nothing past the payload
}

TEST(KernelLoader, BzImageEndCoversDecompressionAtPrefAddress) {
    // Debian's kernel: relocatable, LOAD_PHYSICAL_ADDR 16 MiB, so it runs from 16 MiB even
    // when loaded at 1 MiB (arch/x86/boot/compressed/head_64.S).
    BzImageInfo info;
    info.relocatable = true;
    info.kernel_alignment = 0x200000;
    info.pref_address = 16 * MiB;
    info.init_size = 40 * MiB;
    info.payload_size = 8 * MiB;
    EXPECT_EQ(bzimage_memory_end(info, 1 * MiB), 56 * MiB);
    // Loaded above pref_address, it stays where it was (aligned up).
    EXPECT_EQ(bzimage_memory_end(info, 17 * MiB), 18 * MiB + 40 * MiB);
    // Not relocatable: always at pref_address.
    info.relocatable = false;
    EXPECT_EQ(bzimage_memory_end(info, 1 * MiB), 56 * MiB);
    // A payload bigger than init_size bounds the end itself.
    info.init_size = 0;
    info.pref_address = 0;
    EXPECT_EQ(bzimage_memory_end(info, 1 * MiB), 9 * MiB);
    // A bogus pref_address saturates instead of wrapping to a small end.
    info.pref_address = UINT64_MAX - 4096;
    info.init_size = 1 * MiB;
    EXPECT_EQ(bzimage_memory_end(info, 1 * MiB), UINT64_MAX);
}

TEST(KernelLoader, RejectsBzImageTooLargeForMemory) {
    auto memory = make_memory(32 * MiB);
    auto loaded = parse_and_load(memory, make_bzimage({.init_size = 64 * MiB}));
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error().message(),
              "kernel needs 65 MiB at 0x100000 (up to 0x4200000) but the VM has 32 MiB of memory");
}

TEST(KernelLoader, RejectsBzImageWithBogusPrefAddress) {
    auto memory = make_memory(32 * MiB);
    auto loaded = parse_and_load(memory, make_bzimage({.pref_address = 0xfffffffffff00000}));
    ASSERT_FALSE(loaded);
    EXPECT_THAT(loaded.error().message(), HasSubstr("but the VM has 32 MiB of memory"));
}

TEST(KernelLoader, RejectsFileThatDoesNotMatchTheImage) {
    auto memory = make_memory(32 * MiB);
    auto file = make_bzimage();
    auto image = parse_kernel_image(file);
    ASSERT_TRUE(image);
    file.resize(0x300);
    auto loaded = load_kernel(memory, *image, file);
    ASSERT_FALSE(loaded);
    EXPECT_THAT(loaded.error().message(), HasSubstr("does not match its parsed image"));
}

TEST(KernelLoader, LoadsElfSegmentsAndZeroesBss) {
    auto memory = make_memory(16 * MiB);
    // Dirty memory first, as after a reboot: the bss must come out zero anyway.
    std::memset(memory.host_pointer(0, 16 * MiB), 0xAA, 16 * MiB);
    auto loaded = parse_and_load(memory, make_test_guest_elf());
    ASSERT_TRUE(loaded) << loaded.error().message();
    EXPECT_EQ(loaded->entry, 0x100010u);
    EXPECT_EQ(loaded->load_address, 0x100000u);
    EXPECT_EQ(loaded->end, 0x203000u);
    EXPECT_TRUE(loaded->setup_header.empty());
    const uint8_t* text = memory.host_pointer(0x100000, 0x1000);
    const uint8_t* data = memory.host_pointer(0x200000, 0x3000);
    EXPECT_EQ(text[0], 0x10);
    EXPECT_EQ(text[0xfff], 0x10);
    EXPECT_EQ(data[0], 0x11);
    EXPECT_EQ(data[0x7ff], 0x11);
    EXPECT_EQ(data[0x800], 0);
    EXPECT_EQ(data[0x2fff], 0);
    EXPECT_EQ(data[0x3000], 0xAA);  // past p_memsz: untouched
}

TEST(KernelLoader, RejectsElfSegmentOutsideMemory) {
    auto memory = make_memory(2 * MiB);
    auto loaded = parse_and_load(memory, make_test_guest_elf());
    ASSERT_FALSE(loaded);
    EXPECT_EQ(loaded.error().message(),
              "kernel segment 1 needs 12288 bytes at 0x200000 (up to 0x203000) but the VM has 2 "
              "MiB of memory");
    // Nothing was written, not even the segment that fit.
    EXPECT_EQ(memory.host_pointer(0x100000, 1)[0], 0);
}

TEST(KernelLoader, RejectsElfSegmentInThePciHole) {
    auto memory = make_memory(4 * GiB);
    auto loaded =
        parse_and_load(memory, make_elf({{0xC0000000, 0xC0000000, 0x100, 0x100}}, 0xC0000000));
    ASSERT_FALSE(loaded);
    EXPECT_THAT(
        loaded.error().message(),
        HasSubstr("the VM's memory below 4 GiB ends at 0xc0000000, where the PCI hole starts"));
}

TEST(KernelLoader, RejectsElfSegmentBelowOneMiB) {
    auto memory = make_memory(16 * MiB);
    auto loaded = parse_and_load(memory, make_elf({{0x8000, 0x8000, 0x100, 0x100}}, 0x8000));
    ASSERT_FALSE(loaded);
    EXPECT_THAT(loaded.error().message(), HasSubstr("ELF segment 0 is at 0x8000, below 1 MiB"));
}

}  // namespace
}  // namespace corral::vmm
