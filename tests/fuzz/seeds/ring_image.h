#pragma once

// Builds virtio fuzz inputs (see virtio_fuzz_layout.h): a driver's view of split rings written
// into a byte image of guest RAM, for seeds that are valid chains the mutator then breaks.

#include <cstdint>
#include <cstring>
#include <vector>

#include "../smoke_driver.h"
#include "../virtio_fuzz_layout.h"

namespace corral::fuzz {

class RingImage {
public:
    RingImage(uint8_t features, uint8_t size_log2) : m_bytes(virtio_layout::k_prefix + virtio_layout::k_buffers) {
        m_bytes[0] = features;
        m_bytes[1] = size_log2;
    }

    template <typename T>
    void put(uint64_t address, T value) {
        size_t at = virtio_layout::k_prefix + address;
        if (m_bytes.size() < at + sizeof value) m_bytes.resize(at + sizeof value);
        std::memcpy(m_bytes.data() + at, &value, sizeof value);  // little-endian, as virtio 1.x
    }
    void put_bytes(uint64_t address, const std::vector<uint8_t>& bytes) {
        for (size_t i = 0; i < bytes.size(); ++i) put<uint8_t>(address + i, bytes[i]);
    }
    void descriptor(uint64_t table, uint16_t index, uint64_t address, uint32_t length, uint16_t flags,
                    uint16_t next = 0) {
        put(table + 16ull * index, address);
        put(table + 16ull * index + 8, length);
        put(table + 16ull * index + 12, flags);
        put(table + 16ull * index + 14, next);
    }
    /// Makes `head` available in the ring whose driver area is at `avail` (size 1 << size_log2).
    void publish(uint64_t avail, uint16_t head) {
        uint16_t& index = avail == virtio_layout::k_ring0_avail ? m_avail0 : m_avail1;
        uint16_t size = virtio_layout::queue_size(m_bytes[1]);
        put<uint16_t>(avail + 4 + 2ull * (index % size), head);
        ++index;
        put<uint16_t>(avail + 2, index);
    }
    Input take() { return std::move(m_bytes); }

private:
    Input m_bytes;
    uint16_t m_avail0 = 0;
    uint16_t m_avail1 = 0;
};

constexpr uint16_t k_next = 1, k_write = 2, k_indirect = 4;  // descriptor flags (virtio 1.2 §2.7.5)

}  // namespace corral::fuzz
