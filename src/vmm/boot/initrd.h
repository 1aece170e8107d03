#pragma once

#include <cstdint>
#include <span>

#include "base/result.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm {

/// Where the initrd sits in guest memory, for boot_params' ramdisk_image/ramdisk_size.
struct InitrdLocation {
    uint64_t address = 0;
    uint64_t size = 0;
};

/// The highest page-aligned guest address at which `initrd_size` bytes lie entirely in RAM
/// below the PCI hole, at or above `kernel_end`, and at or below `initrd_addr_max` (the address
/// of the last byte the kernel allows, from its header). Fails, suggesting more memory, when
/// there is no such address.
Result<uint64_t> place_initrd(const GuestMemory& memory, uint64_t initrd_size, uint64_t kernel_end,
                              uint64_t initrd_addr_max);

/// place_initrd(), then copies `initrd` there.
Result<InitrdLocation> load_initrd(const GuestMemory& memory, std::span<const uint8_t> initrd,
                                   uint64_t kernel_end, uint64_t initrd_addr_max);

}  // namespace corral::vmm
