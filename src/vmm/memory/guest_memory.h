#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <type_traits>
#include <vector>

#include "base/mapping.h"
#include "base/result.h"

namespace corral::vmm {

/// One contiguous range of guest-physical RAM backed by host memory.
struct MemoryRegion {
    uint64_t guest_address;
    uint64_t size;
    uint8_t* host;  // owned by GuestMemory's mapping

    uint64_t end() const { return guest_address + size; }
};

/// Whether guest RAM is backed by 4 KiB pages or by hugetlbfs pages.
enum class PageBacking { Normal, Huge };

/// Which pages of guest RAM the monitor's devices wrote (one bit per 4 KiB page of RAM, in RAM
/// order), while a live migration runs: KVM's dirty log sees only the guest's own writes.
struct DeviceWriteLog {
    explicit DeviceWriteLog(uint64_t pages) : words((pages + 63) / 64) {}
    std::atomic<bool> enabled{false};
    std::vector<std::atomic<uint64_t>> words;
};

/// Guest RAM: anonymous host memory split around the PCI hole below 4 GiB.
/// Every guest address the monitor dereferences goes through host_pointer(), which checks bounds.
class GuestMemory {
public:
    /// Allocates `ram_size` bytes (MAP_NORESERVE), placed as [0, hole) and [4 GiB, ...).
    static Result<GuestMemory> create(uint64_t ram_size, PageBacking backing = PageBacking::Normal);
    /// Guest RAM of `ram_size` bytes mapped copy-on-write (MAP_PRIVATE) from the file `fd`
    /// (a snapshot's memory file, exactly that size): pages are read from the file when first
    /// touched, so mapping costs the same whatever the RAM size, and writes stay in this process.
    static Result<GuestMemory> map_private_file(int fd, uint64_t ram_size);

    const std::vector<MemoryRegion>& regions() const { return m_regions; }
    /// True for memory mapped from a snapshot's file (map_private_file()): pages the guest has
    /// not touched hold the file's data, not zeros.
    bool file_backed() const { return m_file_backed; }
    uint64_t ram_size() const { return m_ram_size; }

    /// The host pointer for [address, address + length), or nullptr when any byte of it is not
    /// RAM or the range straddles two regions (length 0 is allowed at any RAM address).
    uint8_t* host_pointer(uint64_t address, uint64_t length) const;

    /// Copies in or out of guest RAM; fails naming the address when the range is not RAM.
    Result<void> write(uint64_t address, std::span<const uint8_t> bytes) const;
    Result<void> read(uint64_t address, std::span<uint8_t> bytes) const;

    /// Records that a device wrote [host, host + length) (a pointer host_pointer() gave), when a
    /// migration asked for it (start_device_write_log()); otherwise costs one atomic load. Call
    /// after the write: a page read after its bit was taken holds what was written.
    void note_device_write(const uint8_t* host, uint64_t length) const;
    /// Clears the device write log and starts recording; stop_device_write_log() stops it.
    void start_device_write_log() const;
    void stop_device_write_log() const;
    /// The guest addresses of the pages noted since the last call (or the start), clearing them.
    std::vector<uint64_t> take_device_writes() const;

    template <typename T>
    Result<void> write_object(uint64_t address, const T& value) const {
        static_assert(std::is_trivially_copyable_v<T>);
        return write(address, std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
    }
    template <typename T>
    Result<T> read_object(uint64_t address) const {
        static_assert(std::is_trivially_copyable_v<T>);
        T value;
        TRY_VOID(read(address, std::span(reinterpret_cast<uint8_t*>(&value), sizeof(T))));
        return value;
    }

private:
    static GuestMemory from_mapping(Mapping mapping, uint64_t ram_size);

    GuestMemory(Mapping mapping, std::vector<MemoryRegion> regions, uint64_t ram_size)
        : m_mapping(std::move(mapping)),
          m_regions(std::move(regions)),
          m_ram_size(ram_size),
          m_device_writes(std::make_unique<DeviceWriteLog>((ram_size + 4095) / 4096)) {}

    Mapping m_mapping;
    std::vector<MemoryRegion> m_regions;
    uint64_t m_ram_size;
    bool m_file_backed = false;
    // Shared with device threads through const GuestMemory&; its own fields are atomic.
    std::unique_ptr<DeviceWriteLog> m_device_writes;
};

}  // namespace corral::vmm
