#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "vmm/boot/kernel_image.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm {

/// Where a kernel landed in guest memory and how to enter it.
struct LoadedKernel {
    uint64_t entry = 0;         ///< guest-physical 64-bit entry point
    uint64_t load_address = 0;  ///< lowest guest address the kernel occupies
    /// First guest address past the kernel, including the room a bzImage decompresses into;
    /// the initrd goes above it.
    uint64_t end = 0;
    /// bzImage: the setup header bytes to copy into boot_params at 0x1F1. Empty for ELF kernels.
    std::vector<uint8_t> setup_header;
};

/// Copies a parsed kernel from `file` (the bytes `image` was parsed from) into guest RAM:
/// a bzImage's protected-mode part at 1 MiB, or each ELF PT_LOAD at its p_paddr (the bytes past
/// p_filesz zeroed). Checks that all of it fits in RAM before writing anything.
Result<LoadedKernel> load_kernel(const GuestMemory& memory, const KernelImage& image,
                                 std::span<const uint8_t> file);

/// The first address past the memory a bzImage loaded at `load_address` uses while it
/// decompresses and runs (see the definition for the rule).
uint64_t bzimage_memory_end(const BzImageInfo& info, uint64_t load_address);

}  // namespace corral::vmm
