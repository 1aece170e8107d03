#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <span>
#include <vector>

#include "vmm/memory/guest_memory.h"

namespace corral::vmm::x86 {

/// e820 entry types (ACPI "Address Range Types"; Linux's E820_TYPE_RAM / E820_TYPE_RESERVED).
constexpr uint32_t k_e820_ram = 1;
constexpr uint32_t k_e820_reserved = 2;

/// The BIOS memory map the guest kernel reads from boot_params: RAM below the EBDA, the EBDA and
/// BIOS area reserved (MP table, ACPI tables), RAM from 1 MiB to the end of low memory, and RAM
/// at 4 GiB when guest memory continues past the PCI hole.
std::vector<boot_e820_entry> build_e820_map(std::span<const MemoryRegion> regions);

/// build_e820_map() for a VM's guest memory.
std::vector<boot_e820_entry> build_e820_map(const GuestMemory& memory);

}  // namespace corral::vmm::x86
