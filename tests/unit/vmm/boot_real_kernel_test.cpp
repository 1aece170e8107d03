// Parses the real Debian kernel that tools put in the cache, when it is there.
#include <gtest/gtest.h>

#include <asm/bootparam.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "vmm/arch/x86_64/layout.h"
#include "vmm/boot/file.h"
#include "vmm/boot/kernel_image.h"
#include "vmm/boot/kernel_loader.h"

namespace corral::vmm {
namespace {

std::string cache_directory() {
    if (const char* dir = std::getenv("CORRAL_CACHE"); dir && *dir)
        return dir;
    if (const char* home = std::getenv("HOME"); home && *home)
        return std::string(home) + "/.cache/corral";
    return {};
}

/// The first of guest/vmlinuz and guest/amd64/vmlinuz (where the guest image tool puts it)
/// that exists, or empty.
std::string find_cached_kernel(const std::string& cache) {
    for (const char* relative : {"/guest/vmlinuz", "/guest/amd64/vmlinuz"})
        if (std::filesystem::exists(cache + relative))
            return cache + relative;
    return {};
}

TEST(RealKernelImage, DebianBzImageHas64BitEntry) {
    const std::string cache = cache_directory();
    const std::string path = cache.empty() ? "" : find_cached_kernel(cache);
    if (path.empty())
        GTEST_SKIP() << "no guest kernel: neither " << cache << "/guest/vmlinuz nor " << cache
                     << "/guest/amd64/vmlinuz exists (the guest image tool puts Debian's kernel "
                        "there; set CORRAL_CACHE or HOME)";
    auto file = read_file(path, 256 * x86::MiB, "kernel");
    ASSERT_TRUE(file) << file.error().describe();
    auto image = parse_kernel_image(*file);
    ASSERT_TRUE(image) << image.error().message();
    ASSERT_EQ(image->format, KernelFormat::BzImage);
    EXPECT_GE(image->bzimage.protocol_version, 0x020c);
    EXPECT_TRUE(image->bzimage.xloadflags & XLF_KERNEL_64);
    EXPECT_TRUE(image->bzimage.relocatable);
    EXPECT_GT(image->cmdline_size, 255u);

    auto memory = GuestMemory::create(512 * x86::MiB);
    ASSERT_TRUE(memory);
    auto loaded = load_kernel(*memory, *image, *file);
    ASSERT_TRUE(loaded) << loaded.error().message();
    EXPECT_EQ(loaded->entry, x86::k_kernel_load_address + 0x200);
    EXPECT_GT(loaded->end, image->bzimage.pref_address);
}

}  // namespace
}  // namespace corral::vmm
