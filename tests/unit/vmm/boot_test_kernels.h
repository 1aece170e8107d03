#pragma once

// Synthetic kernels for the boot loader tests: a minimal bzImage with a 2.12+ setup header and
// an ELF64 x86-64 executable, both built byte by byte so every field is under the test's control.

#include <asm/bootparam.h>
#include <elf.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace corral::vmm::testing {

/// Writes `value` into `bytes` at `offset` (little-endian, as the host is).
template <typename T>
void poke(std::vector<uint8_t>& bytes, size_t offset, const T& value) {
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

struct BzImageSpec {
    uint16_t version = 0x020f;
    uint8_t setup_sects = 1;  // as stored in the file: 0 means 4
    uint8_t loadflags = LOADED_HIGH;
    uint16_t xloadflags = XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G;
    uint8_t jump_offset = 0x6a;  // header ends at 0x202 + 0x6a = 0x26c (protocol 2.15)
    uint64_t payload_size = 0x3000;
    uint32_t syssize = 0;  // 0: computed from payload_size
    uint32_t init_size = 0x20000;
    uint64_t pref_address = 0x100000;
    uint32_t kernel_alignment = 0x200000;
    uint8_t relocatable = 1;
    uint32_t cmdline_size = 2047;
    uint32_t initrd_addr_max = 0x7fffffff;
};

/// The byte the synthetic payload holds at `offset`, so tests can check what was copied.
inline uint8_t payload_byte(uint64_t offset) {
    return static_cast<uint8_t>(offset * 7 + 3);
}

inline std::vector<uint8_t> make_bzimage(const BzImageSpec& spec = {}) {
    const size_t sects = spec.setup_sects == 0 ? 4 : spec.setup_sects;
    const size_t payload_offset = (sects + 1) * 512;
    std::vector<uint8_t> file(payload_offset + spec.payload_size, 0);

    setup_header header{};
    header.setup_sects = spec.setup_sects;
    header.syssize =
        spec.syssize != 0 ? spec.syssize : static_cast<uint32_t>((spec.payload_size + 15) / 16);
    header.boot_flag = 0xAA55;
    header.jump = static_cast<uint16_t>(0xEB | (spec.jump_offset << 8));
    std::memcpy(&header.header, "HdrS", 4);
    header.version = spec.version;
    header.loadflags = spec.loadflags;
    header.initrd_addr_max = spec.initrd_addr_max;
    header.kernel_alignment = spec.kernel_alignment;
    header.relocatable_kernel = spec.relocatable;
    header.xloadflags = spec.xloadflags;
    header.cmdline_size = spec.cmdline_size;
    header.pref_address = spec.pref_address;
    header.init_size = spec.init_size;
    const size_t header_offset = offsetof(boot_params, hdr);
    std::memcpy(file.data() + header_offset, &header, sizeof(header));
    for (size_t i = 0; i < spec.payload_size; ++i)
        file[payload_offset + i] = payload_byte(i);
    return file;
}

struct ElfSegmentSpec {
    uint64_t paddr;
    uint64_t vaddr;
    uint64_t filesz;
    uint64_t memsz;
    uint32_t type = PT_LOAD;
};

/// Offsets of the pieces of make_elf()'s output, for tests that corrupt them.
constexpr size_t k_elf_phoff = sizeof(Elf64_Ehdr);
inline size_t elf_phdr_offset(size_t index) {
    return k_elf_phoff + index * sizeof(Elf64_Phdr);
}

/// An ELF64 x86-64 executable. Segment data follows the program headers, each segment's file
/// bytes holding 0x10 + its index so tests can tell them apart.
inline std::vector<uint8_t> make_elf(const std::vector<ElfSegmentSpec>& segments, uint64_t entry) {
    size_t data_offset = k_elf_phoff + segments.size() * sizeof(Elf64_Phdr);
    size_t total = data_offset;
    for (const auto& s : segments)
        total += s.filesz;
    std::vector<uint8_t> file(total, 0);

    Elf64_Ehdr eh{};
    std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = ET_EXEC;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = entry;
    eh.e_phoff = k_elf_phoff;
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = static_cast<uint16_t>(segments.size());
    poke(file, 0, eh);

    for (size_t i = 0; i < segments.size(); ++i) {
        const auto& s = segments[i];
        Elf64_Phdr ph{};
        ph.p_type = s.type;
        ph.p_flags = PF_R | PF_X;
        ph.p_offset = data_offset;
        ph.p_vaddr = s.vaddr;
        ph.p_paddr = s.paddr;
        ph.p_filesz = s.filesz;
        ph.p_memsz = s.memsz;
        ph.p_align = 0x1000;
        poke(file, elf_phdr_offset(i), ph);
        std::memset(file.data() + data_offset, 0x10 + static_cast<int>(i), s.filesz);
        data_offset += s.filesz;
    }
    return file;
}

/// A test guest linked at 1 MiB: text at 1 MiB, then data with a bss tail at 2 MiB.
inline std::vector<uint8_t> make_test_guest_elf() {
    return make_elf({{0x100000, 0x100000, 0x1000, 0x1000}, {0x200000, 0x200000, 0x800, 0x3000}},
                    0x100010);
}

}  // namespace corral::vmm::testing
