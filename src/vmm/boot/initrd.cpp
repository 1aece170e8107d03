#include "vmm/boot/initrd.h"

#include <fmt/format.h>

#include <algorithm>

#include "vmm/arch/x86_64/layout.h"
#include "vmm/boot/bytes.h"

namespace corral::vmm {

namespace {

constexpr uint64_t k_page_size = 4096;

}  // namespace

Result<uint64_t> place_initrd(const GuestMemory& memory, uint64_t initrd_size, uint64_t kernel_end,
                              uint64_t initrd_addr_max) {
    if (initrd_size == 0)
        return fail("initrd is empty");
    // boot.rst, "Loading the Rest of the Kernel": boot loaders put the initrd as high as
    // allowed, so the kernel's decompression and early allocations below stay clear of it.
    // Only low RAM counts: the region at 0 ends at the PCI hole at the latest (GuestMemory).
    const auto& regions = memory.regions();
    if (regions.empty() || regions.front().guest_address != 0)
        return fail("guest memory has no RAM at address 0");
    const uint64_t low_end = std::min(regions.front().end(), x86::k_pci_hole_start);
    // initrd_addr_max is the address of the last usable byte, so the limit is one past it.
    const uint64_t top = std::min(low_end, boot_detail::saturating_add(initrd_addr_max, 1));
    // Never below 1 MiB: the monitor's boot structures are there (layout.h).
    const uint64_t bottom = std::max(kernel_end, x86::k_high_ram_start);

    auto does_not_fit = [&] {
        // More memory only helps when memory, not the kernel's initrd_addr_max, is the limit.
        const char* advice = top < low_end ? "the kernel's initrd_addr_max allows no higher address"
                                           : "raise --memory";
        return fail(fmt::format(
            "initrd ({}) does not fit in guest memory between the kernel end ({:#x}) and {:#x}; {}",
            boot_detail::format_size(initrd_size), kernel_end, top, advice));
    };
    if (initrd_size > top)
        return does_not_fit();
    const uint64_t address = (top - initrd_size) & ~(k_page_size - 1);
    if (address < bottom)
        return does_not_fit();
    return address;
}

Result<InitrdLocation> load_initrd(const GuestMemory& memory, std::span<const uint8_t> initrd,
                                   uint64_t kernel_end, uint64_t initrd_addr_max) {
    const uint64_t address = TRY(place_initrd(memory, initrd.size(), kernel_end, initrd_addr_max));
    TRY_VOID(memory.write(address, initrd));
    return InitrdLocation{address, initrd.size()};
}

}  // namespace corral::vmm
