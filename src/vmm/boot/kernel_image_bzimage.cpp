// The bzImage half of kernel_image.h. Field offsets and meanings are from the Linux/x86 boot
// protocol (Documentation/arch/x86/boot.rst); the layout is the system's <asm/bootparam.h>.
#include "vmm/boot/kernel_image.h"

#include <asm/bootparam.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>

#include "vmm/boot/bytes.h"

namespace corral::vmm {

namespace {

using boot_detail::read_le;

constexpr uint64_t k_setup_header_offset = offsetof(boot_params, hdr);  // 0x1F1
static_assert(k_setup_header_offset == 0x1F1);

/// File offset of a setup_header field.
constexpr uint64_t file_offset_of(size_t field_offset) {
    return k_setup_header_offset + field_offset;
}

// boot.rst, "64-bit Boot Protocol": "The end of setup header can be calculated as follows:
// 0x0202 + byte value at offset 0x0201".
constexpr uint64_t k_jump_offset_byte = 0x201;
constexpr uint64_t k_header_end_base = 0x202;
// The header may not run into the boot_params fields that follow it (_pad7 ends at 0x290).
constexpr uint64_t k_header_end_limit = offsetof(boot_params, edd_mbr_sig_buffer);
// The 2.12 fields this loader reads end with init_size.
constexpr uint64_t k_header_end_needed =
    file_offset_of(offsetof(setup_header, init_size) + sizeof(uint32_t));

constexpr uint16_t k_boot_flag = 0xAA55;
constexpr uint16_t k_min_protocol = 0x020C;  // 2.12: xloadflags and XLF_KERNEL_64
constexpr uint64_t k_sector_size = 512;
// boot.rst, setup_sects: "If this field is 0, the real value is 4."
constexpr uint8_t k_default_setup_sects = 4;
constexpr uint64_t k_syssize_unit = 16;  // syssize counts 16-byte paragraphs

std::string protocol_string(uint16_t version) {
    return fmt::format("{}.{:02}", version >> 8, version & 0xff);
}

}  // namespace

Result<KernelImage> parse_bzimage(std::span<const uint8_t> file) {
    const uint64_t file_size = file.size();
    auto too_short = [&](uint64_t needed) {
        return fail(fmt::format(
            "kernel file is {} bytes; too short for a bzImage setup header (it needs {:#x} bytes)",
            file_size, needed));
    };

    auto magic = read_le<uint32_t>(file, file_offset_of(offsetof(setup_header, header)));
    if (!magic)
        return too_short(file_offset_of(offsetof(setup_header, header)) + 4);
    if (std::memcmp(&*magic, "HdrS", 4) != 0)
        return fail("not a bzImage: no \"HdrS\" magic at 0x202");

    auto boot_flag = read_le<uint16_t>(file, file_offset_of(offsetof(setup_header, boot_flag)));
    if (!boot_flag)
        return too_short(0x200);
    if (*boot_flag != k_boot_flag)
        return fail(
            fmt::format("bzImage boot_flag at 0x1fe is {:#06x}; expected 0xaa55", *boot_flag));

    auto version = read_le<uint16_t>(file, file_offset_of(offsetof(setup_header, version)));
    if (!version)
        return too_short(file_offset_of(offsetof(setup_header, version)) + 2);
    if (*version < k_min_protocol)
        return fail(fmt::format(
            "bzImage boot protocol {} is too old; 2.12 or later is needed for the 64-bit entry",
            protocol_string(*version)));

    // The header's length is in the file (the operand of the jump at 0x200), so bound it both
    // ways: long enough for the fields read below, short enough to fit boot_params.
    const uint64_t header_end = k_header_end_base + file[k_jump_offset_byte];
    if (header_end < k_header_end_needed)
        return fail(fmt::format(
            "bzImage setup header ends at {:#x}; boot protocol {} needs it to reach {:#x}",
            header_end, protocol_string(*version), k_header_end_needed));
    if (header_end > k_header_end_limit)
        return fail(fmt::format("bzImage setup header ends at {:#x}, past boot_params' limit {:#x}",
                                header_end, k_header_end_limit));
    if (file_size < header_end)
        return too_short(header_end);

    // Decode through the kernel's own struct; fields past the header's end stay zero.
    setup_header header{};
    const uint64_t header_length = header_end - k_setup_header_offset;
    std::memcpy(&header, file.data() + k_setup_header_offset,
                std::min<uint64_t>(header_length, sizeof(header)));

    // boot.rst, loadflags bit 0 (LOADED_HIGH): a bzImage's protected-mode code runs at 1 MiB.
    if (!(header.loadflags & LOADED_HIGH))
        return fail(
            "kernel is a zImage (LOADED_HIGH is clear in loadflags); only bzImages are supported");
    // boot.rst, xloadflags bit 0: "this kernel has the legacy 64-bit entry point at 0x200".
    if (!(header.xloadflags & XLF_KERNEL_64))
        return fail(
            "bzImage has no 64-bit entry point (XLF_KERNEL_64 is clear in xloadflags); "
            "a 64-bit kernel is needed");

    BzImageInfo info;
    info.protocol_version = *version;
    info.setup_sects = header.setup_sects == 0 ? k_default_setup_sects : header.setup_sects;
    info.loadflags = header.loadflags;
    info.xloadflags = header.xloadflags;
    // boot.rst, "Loading the Rest of the Kernel": the protected-mode kernel starts at
    // (setup_sects + 1) * 512 (the boot sector plus the setup sectors) and runs to the end.
    info.payload_offset = (uint64_t{info.setup_sects} + 1) * k_sector_size;
    if (info.payload_offset >= file_size)
        return fail(fmt::format(
            "bzImage setup_sects ({}) puts the protected-mode kernel at offset {:#x}, past the end "
            "of the {}-byte file",
            info.setup_sects, info.payload_offset, file_size));
    info.payload_size = file_size - info.payload_offset;
    // syssize (16-byte paragraphs, rounded up) catches a truncated download or copy.
    const uint64_t declared_size = uint64_t{header.syssize} * k_syssize_unit;
    if (declared_size > info.payload_size + (k_syssize_unit - 1))
        return fail(fmt::format(
            "bzImage is truncated: syssize says the protected-mode kernel is {} bytes but the file "
            "has {} after the setup code",
            declared_size, info.payload_size));

    info.relocatable = header.relocatable_kernel != 0;
    info.kernel_alignment = header.kernel_alignment;
    if (info.relocatable && !std::has_single_bit(info.kernel_alignment))
        return fail(fmt::format("bzImage kernel_alignment {:#x} is not a power of two",
                                info.kernel_alignment));
    info.pref_address = header.pref_address;
    info.init_size = header.init_size;
    info.setup_header.assign(file.begin() + k_setup_header_offset, file.begin() + header_end);

    KernelImage image;
    image.format = KernelFormat::BzImage;
    image.cmdline_size = header.cmdline_size;
    image.initrd_addr_max = header.initrd_addr_max;
    image.bzimage = std::move(info);
    return image;
}

}  // namespace corral::vmm
