#include "vmm/memory/guest_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <fmt/format.h>

#include "vmm/arch/x86_64/layout.h"

namespace corral::vmm {

Result<GuestMemory> GuestMemory::create(uint64_t ram_size, PageBacking backing) {
    if (ram_size == 0) return fail("guest memory size must be larger than 0");
    int flags = MAP_NORESERVE;
    if (backing == PageBacking::Huge) flags |= MAP_HUGETLB;
    auto mapping = TRY_CONTEXT(Mapping::anonymous(ram_size, flags),
                               backing == PageBacking::Huge
                                   ? "allocating guest memory from hugepages (are enough reserved?)"
                                   : "allocating guest memory");

    return from_mapping(std::move(mapping), ram_size);
}

Result<GuestMemory> GuestMemory::map_private_file(int fd, uint64_t ram_size) {
    if (ram_size == 0) return fail("guest memory size must be larger than 0");
    void* address = ::mmap(nullptr, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
    if (address == MAP_FAILED) return fail_errno("mapping the snapshot's memory file");
    auto memory = from_mapping(Mapping(address, ram_size), ram_size);
    memory.m_file_backed = true;
    return memory;
}

GuestMemory GuestMemory::from_mapping(Mapping mapping, uint64_t ram_size) {
    std::vector<MemoryRegion> regions;
    uint64_t low = std::min(ram_size, x86::k_pci_hole_start);
    regions.push_back({0, low, mapping.data()});
    if (ram_size > low)
        regions.push_back({x86::k_high_memory_start, ram_size - low, mapping.data() + low});
    return GuestMemory(std::move(mapping), std::move(regions), ram_size);
}

uint8_t* GuestMemory::host_pointer(uint64_t address, uint64_t length) const {
    for (const auto& region : m_regions) {
        // Written to avoid overflow: address and length both come from the guest.
        if (address < region.guest_address || address - region.guest_address > region.size) continue;
        uint64_t offset = address - region.guest_address;
        if (length > region.size - offset) return nullptr;
        return region.host + offset;
    }
    return nullptr;
}

Result<void> GuestMemory::write(uint64_t address, std::span<const uint8_t> bytes) const {
    uint8_t* host = host_pointer(address, bytes.size());
    if (!host)
        return fail("guest range 0x" + fmt::format("{:x}", address) + "+" +
                    std::to_string(bytes.size()) + " is not guest RAM");
    std::memcpy(host, bytes.data(), bytes.size());
    return {};
}

Result<void> GuestMemory::read(uint64_t address, std::span<uint8_t> bytes) const {
    const uint8_t* host = host_pointer(address, bytes.size());
    if (!host)
        return fail("guest range 0x" + fmt::format("{:x}", address) + "+" +
                    std::to_string(bytes.size()) + " is not guest RAM");
    std::memcpy(bytes.data(), host, bytes.size());
    return {};
}

}  // namespace corral::vmm
