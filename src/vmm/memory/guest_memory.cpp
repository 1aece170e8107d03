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

void GuestMemory::note_device_write(const uint8_t* host, uint64_t length) const {
    if (!m_device_writes->enabled.load(std::memory_order_relaxed) || length == 0) return;
    // RAM is one mapping: the offset in it is the page's place in the log.
    const uint8_t* base = m_regions.front().host;
    if (host < base || static_cast<uint64_t>(host - base) > m_ram_size ||
        length > m_ram_size - static_cast<uint64_t>(host - base))
        return;
    uint64_t first = static_cast<uint64_t>(host - base) / 4096;
    uint64_t last = (static_cast<uint64_t>(host - base) + length - 1) / 4096;
    for (uint64_t page = first; page <= last; ++page)
        m_device_writes->words[page / 64].fetch_or(1ull << (page % 64), std::memory_order_release);
}

void GuestMemory::start_device_write_log() const {
    for (auto& word : m_device_writes->words) word.store(0, std::memory_order_relaxed);
    m_device_writes->enabled.store(true, std::memory_order_seq_cst);
}

void GuestMemory::stop_device_write_log() const { m_device_writes->enabled.store(false, std::memory_order_seq_cst); }

std::vector<uint64_t> GuestMemory::take_device_writes() const {
    std::vector<uint64_t> addresses;
    auto& words = m_device_writes->words;
    for (uint64_t word = 0; word < words.size(); ++word)
        for (uint64_t bits = words[word].exchange(0, std::memory_order_acquire); bits; bits &= bits - 1) {
            uint64_t offset = (word * 64 + static_cast<uint64_t>(__builtin_ctzll(bits))) * 4096;
            // RAM offset to guest address: regions follow each other in the mapping.
            uint64_t region_start = 0;
            for (const auto& region : m_regions) {
                if (offset < region_start + region.size) {
                    addresses.push_back(region.guest_address + (offset - region_start));
                    break;
                }
                region_start += region.size;
            }
        }
    return addresses;
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
