#include "vmm/boot/kernel_image.h"

#include <fmt/format.h>

#include <cstring>

namespace corral::vmm {

namespace {

// boot.rst, "The Real-Mode Kernel Header": "HdrS" at 0x202 marks protocol 2.00 and later.
constexpr uint64_t k_bzimage_magic_offset = 0x202;
constexpr uint64_t k_bzimage_magic_end = k_bzimage_magic_offset + 4;
constexpr uint8_t k_elf_magic[4] = {0x7f, 'E', 'L', 'F'};

}  // namespace

Result<KernelImage> parse_kernel_image(std::span<const uint8_t> file) {
    if (file.empty())
        return fail("kernel file is empty");
    if (file.size() >= k_bzimage_magic_end &&
        std::memcmp(file.data() + k_bzimage_magic_offset, "HdrS", 4) == 0)
        return parse_bzimage(file);
    if (file.size() >= sizeof(k_elf_magic) &&
        std::memcmp(file.data(), k_elf_magic, sizeof(k_elf_magic)) == 0)
        return parse_elf_kernel(file);
    if (file.size() < k_bzimage_magic_end)
        return fail(fmt::format("kernel file is {} bytes; too short for a bzImage setup header",
                                file.size()));
    return fail("not a Linux kernel: no bzImage header and no ELF magic");
}

}  // namespace corral::vmm
