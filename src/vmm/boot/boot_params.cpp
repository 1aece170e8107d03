#include "vmm/boot/boot_params.h"

#include <fmt/format.h>

#include <cstddef>
#include <cstring>

#include "vmm/arch/x86_64/layout.h"

namespace corral::vmm {

namespace {

constexpr size_t k_header_offset = offsetof(boot_params, hdr);  // 0x1F1
// The header may extend into _pad7 in newer kernels, but not past it.
constexpr size_t k_header_max_size = offsetof(boot_params, edd_mbr_sig_buffer) - k_header_offset;
constexpr size_t k_header_magic_end = offsetof(setup_header, header) + sizeof(uint32_t);
constexpr uint32_t k_header_magic = 0x53726448;  // "HdrS", little-endian
constexpr uint16_t k_boot_flag = 0xAA55;
constexpr uint16_t k_elf_protocol_version = 0x020C;  // 2.12: the first with the 64-bit entry
// boot.rst, type_of_loader: 0xFF is "undefined", the value for loaders without an assigned id.
constexpr uint8_t k_loader_undefined = 0xFF;
// boot.rst, heap_end_ptr: "the end of the setup stack/heap, minus 0x0200" from the real-mode
// code's start; 0xFE00 is the conventional value for a setup segment of 64 KiB.
constexpr uint16_t k_heap_end_ptr = 0xFE00;

constexpr uint32_t low32(uint64_t value) {
    return static_cast<uint32_t>(value);
}
constexpr uint32_t high32(uint64_t value) {
    return static_cast<uint32_t>(value >> 32);
}

}  // namespace

Result<boot_params> build_boot_params(std::span<const uint8_t> setup_header_bytes,
                                      std::span<const boot_e820_entry> e820,
                                      CmdlineLocation cmdline,
                                      std::optional<InitrdLocation> initrd) {
    // boot.rst, "64-bit Boot Protocol": start from an all-zero boot_params.
    boot_params params;
    std::memset(&params, 0, sizeof(params));

    if (!setup_header_bytes.empty()) {
        if (setup_header_bytes.size() < k_header_magic_end ||
            setup_header_bytes.size() > k_header_max_size)
            return fail(fmt::format("bzImage setup header is {} bytes; expected {} to {}",
                                    setup_header_bytes.size(), k_header_magic_end,
                                    k_header_max_size));
        // The header runs on past sizeof(setup_header) for newer protocols: copy it at its
        // offset in the zero page, where the kernel's own struct has those fields.
        std::memcpy(reinterpret_cast<uint8_t*>(&params) + k_header_offset,
                    setup_header_bytes.data(), setup_header_bytes.size());
        if (params.hdr.header != k_header_magic)
            return fail("bzImage setup header has no \"HdrS\" magic");
    } else {
        // An ELF kernel has no header: announce just enough of one for the fields below.
        params.hdr.boot_flag = k_boot_flag;
        params.hdr.header = k_header_magic;
        params.hdr.version = k_elf_protocol_version;
        params.hdr.loadflags = LOADED_HIGH;
    }

    if (e820.size() > E820_MAX_ENTRIES_ZEROPAGE)
        return fail(fmt::format("the e820 map has {} entries; the zero page holds at most {}",
                                e820.size(), E820_MAX_ENTRIES_ZEROPAGE));
    params.e820_entries = static_cast<uint8_t>(e820.size());
    if (!e820.empty())
        std::memcpy(params.e820_table, e820.data(), e820.size_bytes());

    params.hdr.type_of_loader = k_loader_undefined;
    // LOADED_HIGH comes with the kernel's header and stays; CAN_USE_HEAP makes heap_end_ptr valid.
    params.hdr.loadflags |= CAN_USE_HEAP;
    params.hdr.heap_end_ptr = k_heap_end_ptr;

    // zero-page.rst: ext_cmd_line_ptr and ext_ramdisk_* hold bits 32-63.
    params.hdr.cmd_line_ptr = low32(cmdline.address);
    params.ext_cmd_line_ptr = high32(cmdline.address);
    params.hdr.cmdline_size = cmdline.length;
    // Without an initrd the fields are zero: "no initrd" to the kernel, whatever the file held.
    const InitrdLocation ramdisk = initrd.value_or(InitrdLocation{});
    params.hdr.ramdisk_image = low32(ramdisk.address);
    params.ext_ramdisk_image = high32(ramdisk.address);
    params.hdr.ramdisk_size = low32(ramdisk.size);
    params.ext_ramdisk_size = high32(ramdisk.size);
    return params;
}

Result<void> write_boot_params(const GuestMemory& memory, const boot_params& params) {
    if (auto written = memory.write_object(x86::k_boot_params_address, params); !written)
        return fail(written.error().with_context("writing boot_params"));
    return {};
}

}  // namespace corral::vmm
