// The ELF half of kernel_image.h: an ELF64 x86-64 executable whose PT_LOAD segments are loaded
// at their physical addresses (System V gABI, "Program Header"), as vmlinux or a test guest.
#include "vmm/boot/kernel_image.h"

#include <elf.h>
#include <fmt/format.h>

#include <cstring>

#include "vmm/boot/bytes.h"

namespace corral::vmm {

namespace {

using boot_detail::range_fits;
using boot_detail::range_is_addressable;
using boot_detail::read_le;

/// Finds the guest-physical address of `entry`. A test guest's entry is physical (p_vaddr ==
/// p_paddr); vmlinux's e_entry is the physical phys_startup_64, but an ELF whose e_entry is a
/// kernel virtual address (0xffffffff81000000+) is translated through the segment holding it.
std::optional<uint64_t> physical_entry(uint64_t entry, std::span<const Elf64_Phdr> loads) {
    for (const auto& p : loads)
        if (entry >= p.p_paddr && entry - p.p_paddr < p.p_memsz)
            return entry;
    for (const auto& p : loads)
        if (entry >= p.p_vaddr && entry - p.p_vaddr < p.p_memsz)
            return entry - p.p_vaddr + p.p_paddr;
    return std::nullopt;
}

}  // namespace

Result<KernelImage> parse_elf_kernel(std::span<const uint8_t> file) {
    const uint64_t file_size = file.size();
    auto header = read_le<Elf64_Ehdr>(file, 0);
    if (!header)
        return fail(fmt::format("ELF kernel is {} bytes; too short for the {}-byte ELF header",
                                file_size, sizeof(Elf64_Ehdr)));
    const Elf64_Ehdr& eh = *header;
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return fail("not an ELF file: no ELF magic");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64)
        return fail(
            "ELF kernel is not 64-bit (EI_CLASS is not ELFCLASS64); an x86-64 kernel is needed");
    if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return fail("ELF kernel is not little-endian (EI_DATA is not ELFDATA2LSB)");
    if (eh.e_machine != EM_X86_64)
        return fail(
            fmt::format("ELF kernel is for machine {}, not x86-64 ({})", eh.e_machine, EM_X86_64));
    if (eh.e_type != ET_EXEC)
        return fail(
            fmt::format("ELF kernel is not an executable (e_type is {}, not ET_EXEC)", eh.e_type));
    if (eh.e_phnum == 0)
        return fail("ELF kernel has no program headers");
    // PN_XNUM means the real count is in section 0; no kernel needs 65535 program headers.
    if (eh.e_phnum == PN_XNUM)
        return fail("ELF kernel has too many program headers (PN_XNUM)");
    if (eh.e_phentsize != sizeof(Elf64_Phdr))
        return fail(fmt::format("ELF program header size is {} bytes; expected {}", eh.e_phentsize,
                                sizeof(Elf64_Phdr)));
    // e_phnum < 65535, so the product cannot overflow; the table must lie inside the file.
    const uint64_t table_size = uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
    if (eh.e_phoff >= file_size)
        return fail(
            fmt::format("ELF program header table offset {:#x} is past the end of the {}-byte file",
                        eh.e_phoff, file_size));
    if (!range_fits(eh.e_phoff, table_size, file_size))
        return fail(
            fmt::format("ELF program header table ({} entries at {:#x}) extends past the end of "
                        "the {}-byte file",
                        eh.e_phnum, eh.e_phoff, file_size));

    KernelImage image;
    image.format = KernelFormat::Elf;
    image.cmdline_size = k_elf_cmdline_size;
    image.initrd_addr_max = k_elf_initrd_addr_max;
    // Bounded by e_phnum (and so by the file's size, which holds the table).
    std::vector<Elf64_Phdr> loads;
    for (uint32_t i = 0; i < eh.e_phnum; ++i) {
        Elf64_Phdr p = *read_le<Elf64_Phdr>(file, eh.e_phoff + uint64_t{i} * sizeof(Elf64_Phdr));
        if (p.p_type != PT_LOAD || (p.p_memsz == 0 && p.p_filesz == 0))
            continue;
        if (p.p_filesz > p.p_memsz)
            return fail(fmt::format("ELF segment {} has p_filesz {:#x} larger than p_memsz {:#x}",
                                    i, p.p_filesz, p.p_memsz));
        if (!range_fits(p.p_offset, p.p_filesz, file_size))
            return fail(fmt::format(
                "ELF segment {} extends past the end of the file ({:#x} bytes at offset {:#x}; the "
                "file is {} bytes)",
                i, p.p_filesz, p.p_offset, file_size));
        if (!range_is_addressable(p.p_paddr, p.p_memsz) ||
            !range_is_addressable(p.p_vaddr, p.p_memsz))
            return fail(fmt::format(
                "ELF segment {} ({:#x} bytes at physical {:#x}, virtual {:#x}) wraps around the "
                "64-bit address space",
                i, p.p_memsz, p.p_paddr, p.p_vaddr));
        loads.push_back(p);
        image.segments.push_back({i, p.p_offset, p.p_filesz, p.p_paddr, p.p_memsz});
    }
    if (loads.empty())
        return fail("ELF kernel has no loadable (PT_LOAD) segments");

    auto entry = physical_entry(eh.e_entry, loads);
    if (!entry)
        return fail(
            fmt::format("ELF entry point {:#x} is not inside any loadable segment", eh.e_entry));
    image.elf_entry = *entry;
    return image;
}

}  // namespace corral::vmm
