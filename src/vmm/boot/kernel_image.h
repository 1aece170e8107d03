#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"

namespace corral::vmm {

/// Which of the two supported kernel file formats a KernelImage came from.
enum class KernelFormat { BzImage, Elf };

/// What the loader needs from a bzImage's setup header (boot.rst, "The Real-Mode Kernel Header").
struct BzImageInfo {
    uint16_t protocol_version = 0;  ///< e.g. 0x020f for boot protocol 2.15
    uint8_t setup_sects = 0;        ///< 512-byte setup sectors (a 0 in the file already became 4)
    uint8_t loadflags = 0;
    uint16_t xloadflags = 0;
    /// File offset of the protected-mode kernel: (setup_sects + 1) * 512.
    uint64_t payload_offset = 0;
    uint64_t payload_size = 0;  ///< bytes of protected-mode kernel after payload_offset
    uint64_t pref_address = 0;  ///< where the kernel runs if it may choose (LOAD_PHYSICAL_ADDR)
    uint32_t kernel_alignment = 0;
    bool relocatable = false;
    uint32_t init_size = 0;  ///< memory the kernel needs from its start to decompress and run
    /// The file's bytes from 0x1F1 to the end of the setup header (0x202 + byte at 0x201): the
    /// part a boot loader copies into boot_params (boot.rst, "64-bit Boot Protocol").
    std::vector<uint8_t> setup_header;
};

/// One PT_LOAD program header of an ELF kernel, already checked against the file's size.
struct ElfSegment {
    uint32_t index = 0;  ///< program header index, for error messages
    uint64_t file_offset = 0;
    uint64_t file_size = 0;
    uint64_t guest_address = 0;  ///< p_paddr: where the segment is loaded
    uint64_t memory_size = 0;    ///< p_memsz >= file_size; the rest is zeroed
};

/// A parsed kernel file: a bzImage or an x86-64 ELF executable (vmlinux or a freestanding test
/// guest). A plain description; load_kernel() puts it into guest memory.
struct KernelImage {
    KernelFormat format = KernelFormat::BzImage;
    BzImageInfo bzimage;               ///< only for KernelFormat::BzImage
    std::vector<ElfSegment> segments;  ///< only for KernelFormat::Elf
    uint64_t elf_entry = 0;            ///< guest-physical entry point; only for KernelFormat::Elf
    /// The longest command line the kernel accepts, without the terminating NUL.
    uint32_t cmdline_size = 0;
    /// The highest address the initrd may occupy (the address of its last byte).
    uint32_t initrd_addr_max = 0;
};

/// Linux x86's COMMAND_LINE_SIZE is 2048 bytes including the NUL; an ELF kernel has no header
/// that says so, and bzImages report the same limit as cmdline_size = 2047.
constexpr uint32_t k_elf_cmdline_size = 2047;
/// An ELF kernel has no initrd_addr_max either; x86-64 kernels declare 0x7fffffff in theirs.
constexpr uint32_t k_elf_initrd_addr_max = 0x7fffffff;

/// Parses a kernel file. Every offset and size read from it is checked against its length;
/// a malformed file fails with a message naming the field that is wrong.
Result<KernelImage> parse_kernel_image(std::span<const uint8_t> file);

/// Parses a file already known to start with the bzImage "HdrS" magic at 0x202.
Result<KernelImage> parse_bzimage(std::span<const uint8_t> file);

/// Parses a file already known to start with the ELF magic.
Result<KernelImage> parse_elf_kernel(std::span<const uint8_t> file);

}  // namespace corral::vmm
