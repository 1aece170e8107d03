#include "vmm/arch/x86_64/e820.h"

#include <algorithm>

#include "vmm/arch/x86_64/layout.h"

namespace corral::vmm::x86 {

std::vector<boot_e820_entry> build_e820_map(std::span<const MemoryRegion> regions) {
    std::vector<boot_e820_entry> map;
    auto add = [&](uint64_t start, uint64_t end, uint32_t type) {
        if (end > start)
            map.push_back({start, end - start, type});
    };
    for (const auto& region : regions) {
        if (region.guest_address != 0) {
            add(region.guest_address, region.end(), k_e820_ram);
            continue;
        }
        // The region at 0 holds the legacy PC area: RAM up to the EBDA, then the EBDA, VGA hole
        // and BIOS area reserved up to 1 MiB whether or not RAM backs them, since the MP table
        // (EBDA) and ACPI tables (0xE0000) live there and must not be used as RAM by the guest.
        add(0, std::min(region.end(), k_ebda_start), k_e820_ram);
        add(k_ebda_start, k_high_ram_start, k_e820_reserved);
        add(k_high_ram_start, region.end(), k_e820_ram);
    }
    return map;
}

std::vector<boot_e820_entry> build_e820_map(const GuestMemory& memory) {
    return build_e820_map(std::span(memory.regions()));
}

}  // namespace corral::vmm::x86
