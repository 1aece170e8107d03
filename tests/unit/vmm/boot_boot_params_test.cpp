#include "vmm/boot/boot_params.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <vector>

#include "boot_test_kernels.h"
#include "vmm/arch/x86_64/e820.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/boot/kernel_image.h"

namespace corral::vmm {
namespace {

using namespace testing;
using namespace x86;
using ::testing::HasSubstr;

// zero-page.rst offsets: the system header must agree with the documented ABI.
static_assert(sizeof(boot_params) == 4096);
static_assert(offsetof(boot_params, ext_ramdisk_image) == 0x0c0);
static_assert(offsetof(boot_params, ext_cmd_line_ptr) == 0x0c8);
static_assert(offsetof(boot_params, e820_entries) == 0x1e8);
static_assert(offsetof(boot_params, hdr) == 0x1f1);
static_assert(offsetof(boot_params, e820_table) == 0x2d0);

std::vector<boot_e820_entry> sample_e820() {
    return {{0, 0x9fc00, k_e820_ram},
            {0x9fc00, 0x60400, k_e820_reserved},
            {0x100000, 0x7f00000, k_e820_ram}};
}

TEST(BootParams, FromBzImageHeader) {
    auto file = make_bzimage();
    auto image = parse_kernel_image(file);
    ASSERT_TRUE(image);
    auto e820 = sample_e820();
    auto params = build_boot_params(image->bzimage.setup_header, e820, {k_cmdline_address, 42},
                                    InitrdLocation{0x7000000, 0x123456});
    ASSERT_TRUE(params) << params.error().message();
    // Copied from the kernel's header.
    EXPECT_EQ(params->hdr.version, 0x020f);
    EXPECT_EQ(params->hdr.setup_sects, 1);
    EXPECT_EQ(params->hdr.boot_flag, 0xAA55);
    EXPECT_EQ(params->hdr.init_size, 0x20000u);
    EXPECT_EQ(params->hdr.xloadflags, XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G);
    // Filled in by the loader.
    EXPECT_EQ(params->hdr.type_of_loader, 0xff);
    EXPECT_EQ(params->hdr.loadflags, LOADED_HIGH | CAN_USE_HEAP);
    EXPECT_EQ(params->hdr.heap_end_ptr, 0xfe00);
    EXPECT_EQ(params->hdr.cmd_line_ptr, k_cmdline_address);
    EXPECT_EQ(params->ext_cmd_line_ptr, 0u);
    EXPECT_EQ(params->hdr.cmdline_size, 42u);
    EXPECT_EQ(params->hdr.ramdisk_image, 0x7000000u);
    EXPECT_EQ(params->hdr.ramdisk_size, 0x123456u);
    EXPECT_EQ(params->ext_ramdisk_image, 0u);
    ASSERT_EQ(params->e820_entries, 3);
    EXPECT_EQ(params->e820_table[2].addr, 0x100000u);
    EXPECT_EQ(params->e820_table[2].size, 0x7f00000u);
    EXPECT_EQ(params->e820_table[1].type, k_e820_reserved);
    // Nothing else of the zero page is set: the sentinel, EDD and screen info stay zero.
    EXPECT_EQ(params->sentinel, 0);
    EXPECT_EQ(params->screen_info.orig_video_isVGA, 0);
}

TEST(BootParams, SplitsAddressesAbove4GiB) {
    auto image = parse_kernel_image(make_bzimage());
    ASSERT_TRUE(image);
    auto params = build_boot_params(image->bzimage.setup_header, {}, {0x1'0002'0000, 5},
                                    InitrdLocation{0x2'3456'7000, 0x1'0000'0010});
    ASSERT_TRUE(params);
    EXPECT_EQ(params->hdr.cmd_line_ptr, 0x20000u);
    EXPECT_EQ(params->ext_cmd_line_ptr, 1u);
    EXPECT_EQ(params->hdr.ramdisk_image, 0x34567000u);
    EXPECT_EQ(params->ext_ramdisk_image, 2u);
    EXPECT_EQ(params->hdr.ramdisk_size, 0x10u);
    EXPECT_EQ(params->ext_ramdisk_size, 1u);
}

TEST(BootParams, NoInitrdClearsRamdiskFields) {
    auto file = make_bzimage();
    auto image = parse_kernel_image(file);
    ASSERT_TRUE(image);
    auto header = image->bzimage.setup_header;
    // A header that (wrongly) carries a ramdisk address must not leak it to the kernel.
    testing::poke<uint32_t>(header, offsetof(setup_header, ramdisk_image), 0x1234000);
    auto params = build_boot_params(header, sample_e820(), {k_cmdline_address, 0}, std::nullopt);
    ASSERT_TRUE(params);
    EXPECT_EQ(params->hdr.ramdisk_image, 0u);
    EXPECT_EQ(params->hdr.ramdisk_size, 0u);
}

TEST(BootParams, ForElfKernelWithoutHeader) {
    auto e820 = sample_e820();
    auto params = build_boot_params({}, e820, {k_cmdline_address, 10}, std::nullopt);
    ASSERT_TRUE(params) << params.error().message();
    EXPECT_EQ(params->hdr.boot_flag, 0xAA55);
    EXPECT_EQ(std::memcmp(&params->hdr.header, "HdrS", 4), 0);
    EXPECT_EQ(params->hdr.version, 0x020c);
    EXPECT_EQ(params->hdr.type_of_loader, 0xff);
    EXPECT_EQ(params->hdr.loadflags, LOADED_HIGH | CAN_USE_HEAP);
    EXPECT_EQ(params->hdr.cmd_line_ptr, k_cmdline_address);
    EXPECT_EQ(params->hdr.setup_sects, 0);
    EXPECT_EQ(params->e820_entries, 3);
}

TEST(BootParams, RejectsTooManyE820Entries) {
    std::vector<boot_e820_entry> e820(E820_MAX_ENTRIES_ZEROPAGE + 1, {0, 4096, k_e820_ram});
    auto params = build_boot_params({}, e820, {k_cmdline_address, 0}, std::nullopt);
    ASSERT_FALSE(params);
    EXPECT_EQ(params.error().message(),
              "the e820 map has 129 entries; the zero page holds at most 128");
    e820.pop_back();
    EXPECT_TRUE(build_boot_params({}, e820, {k_cmdline_address, 0}, std::nullopt));
}

TEST(BootParams, RejectsMalformedHeaderBytes) {
    std::vector<uint8_t> short_header(8, 0);
    EXPECT_FALSE(build_boot_params(short_header, {}, {}, std::nullopt));
    std::vector<uint8_t> long_header(0x290 - 0x1f1 + 1, 0);
    EXPECT_FALSE(build_boot_params(long_header, {}, {}, std::nullopt));
    std::vector<uint8_t> no_magic(0x70, 0);
    auto params = build_boot_params(no_magic, {}, {}, std::nullopt);
    ASSERT_FALSE(params);
    EXPECT_THAT(params.error().message(), HasSubstr("HdrS"));
}

TEST(BootParams, WrittenAtTheZeroPageAddress) {
    auto memory = GuestMemory::create(16 * MiB);
    ASSERT_TRUE(memory);
    auto e820 = build_e820_map(*memory);
    auto params = build_boot_params({}, e820, {k_cmdline_address, 3}, std::nullopt);
    ASSERT_TRUE(params);
    ASSERT_TRUE(write_boot_params(*memory, *params));
    auto back = memory->read_object<boot_params>(k_boot_params_address);
    ASSERT_TRUE(back);
    EXPECT_EQ(std::memcmp(&*back, &*params, sizeof(boot_params)), 0);
    EXPECT_EQ(back->e820_entries, 3);
}

}  // namespace
}  // namespace corral::vmm
