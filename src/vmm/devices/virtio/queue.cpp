#include "vmm/devices/virtio/queue.h"

#include <atomic>
#include <bit>
#include <cstring>

#include <fmt/format.h>

namespace corral::vmm::virtio {
namespace {

// Ring fields are little-endian (§2.7: "le16"); x86 hosts need no swapping. The rings were
// checked for alignment, so these are naturally aligned atomic accesses.
uint16_t load16(const uint8_t* at, int order = __ATOMIC_RELAXED) {
    return __atomic_load_n(reinterpret_cast<const uint16_t*>(at), order);
}
void store16(uint8_t* at, uint16_t value, int order = __ATOMIC_RELAXED) {
    __atomic_store_n(reinterpret_cast<uint16_t*>(at), value, order);
}
void store32(uint8_t* at, uint32_t value) {
    __atomic_store_n(reinterpret_cast<uint32_t*>(at), value, __ATOMIC_RELAXED);
}

}  // namespace

std::string_view describe(ChainError error) {
    switch (error) {
        case ChainError::TooLong: return "chain longer than the queue (or a loop)";
        case ChainError::NextOutOfRange: return "next descriptor beyond the table";
        case ChainError::BadAddress: return "buffer outside guest RAM";
        case ChainError::ZeroLength: return "zero-length buffer";
        case ChainError::IndirectNotNegotiated: return "indirect descriptor not negotiated";
        case ChainError::NestedIndirect: return "indirect table inside an indirect table";
        case ChainError::IndirectWithNext: return "indirect descriptor with NEXT";
        case ChainError::BadIndirectLength: return "indirect table length not a non-zero multiple of 16";
        case ChainError::ReadableAfterWritable: return "device-readable buffer after a device-writable one";
        case ChainError::Count: break;
    }
    return "unknown";
}

Result<Virtqueue> Virtqueue::create(const GuestMemory& memory, const QueueLayout& layout,
                                    QueueFeatures features) {
    uint16_t size = layout.size;
    if (size == 0 || size > k_max_queue_size || !std::has_single_bit(size))
        return fail(fmt::format("queue size {} is not a power of two from 1 to 32768", size));
    // §2.7.1 alignment: descriptor table 16, driver area 2, device area 4.
    if (layout.descriptor_table % 16 || layout.driver_area % 2 || layout.device_area % 4)
        return fail("virtqueue rings are misaligned");
    uint8_t* table = memory.host_pointer(layout.descriptor_table, 16ull * size);
    uint8_t* avail = memory.host_pointer(layout.driver_area, 6 + 2ull * size);
    uint8_t* used = memory.host_pointer(layout.device_area, 6 + 8ull * size);
    if (!table || !avail || !used)
        return fail(fmt::format("virtqueue rings (0x{:x}, 0x{:x}, 0x{:x}; size {}) are not in guest RAM",
                                layout.descriptor_table, layout.driver_area, layout.device_area, size));
    Virtqueue queue(memory, size, table, avail, used, features);
    // The device owns the used ring from here on; start it from index 0 (§2.7.8: the driver
    // initialized it to zero, but a hostile one may not have).
    queue.m_next_used = 0;
    store16(used + 2, 0);
    store16(used + 0, 0);
    return queue;
}

uint16_t Virtqueue::avail_index() const { return load16(m_avail + 2, __ATOMIC_ACQUIRE); }

std::expected<DescriptorChain, ChainError> Virtqueue::parse_chain(uint16_t head) const {
    DescriptorChain chain;
    chain.head = head;
    const uint8_t* table = m_table;
    uint32_t table_count = m_size;
    bool indirect = false;
    uint32_t index = head;
    uint32_t visited = 0;
    for (;;) {
        // §2.7.5.3.1: no chain is longer than the queue size; this also ends descriptor loops.
        if (++visited > m_size) return std::unexpected(ChainError::TooLong);
        Descriptor descriptor;
        // index < table_count, and the table holds table_count descriptors (checked).
        std::memcpy(&descriptor, table + 16ull * index, sizeof descriptor);
        if (descriptor.flags & k_desc_f_indirect) {
            if (!m_features.indirect_descriptors) return std::unexpected(ChainError::IndirectNotNegotiated);
            if (indirect) return std::unexpected(ChainError::NestedIndirect);
            if (descriptor.flags & k_desc_f_next) return std::unexpected(ChainError::IndirectWithNext);
            if (descriptor.length == 0 || descriptor.length % 16)
                return std::unexpected(ChainError::BadIndirectLength);
            if (descriptor.length / 16 > m_size) return std::unexpected(ChainError::TooLong);
            // Bounds: the whole table [address, address + length) is RAM in one region.
            const uint8_t* host = m_memory->host_pointer(descriptor.address, descriptor.length);
            if (!host) return std::unexpected(ChainError::BadAddress);
            table = host;
            table_count = descriptor.length / 16;
            indirect = true;
            index = 0;
            continue;
        }
        if (descriptor.length == 0) return std::unexpected(ChainError::ZeroLength);
        // Bounds: [address, address + length) is RAM in one region.
        uint8_t* host = m_memory->host_pointer(descriptor.address, descriptor.length);
        if (!host) return std::unexpected(ChainError::BadAddress);
        if (descriptor.flags & k_desc_f_write) {
            chain.writable.push_back({host, descriptor.length});
            chain.writable_bytes += descriptor.length;
        } else {
            if (!chain.writable.empty()) return std::unexpected(ChainError::ReadableAfterWritable);
            chain.readable.push_back({host, descriptor.length});
            chain.readable_bytes += descriptor.length;
        }
        if (!(descriptor.flags & k_desc_f_next)) return chain;
        if (descriptor.next >= table_count) return std::unexpected(ChainError::NextOutOfRange);
        index = descriptor.next;
    }
}

std::optional<DescriptorChain> Virtqueue::pop() {
    while (!m_broken) {
        uint16_t available = static_cast<uint16_t>(avail_index() - m_next_avail);
        if (available == 0) return std::nullopt;
        if (available > m_size) {
            // §2.7.6: the driver cannot have more than size buffers outstanding.
            m_broken = true;
            return std::nullopt;
        }
        // Slot 4 + 2 * (index % size) < 4 + 2 * size: inside the checked driver area.
        uint16_t head = load16(m_avail + 4 + 2 * (m_next_avail % m_size));
        ++m_next_avail;
        if (head >= m_size) {
            m_broken = true;  // no descriptor to return: the driver's state is beyond repair
            return std::nullopt;
        }
        auto chain = parse_chain(head);
        if (chain) {
            ++m_counters.chains;
            m_in_flight_writable[head].assign(chain->writable.begin(), chain->writable.end());
            return std::move(*chain);
        }
        ++m_counters.rejected_chains;
        ++m_counters.rejected_by_reason[static_cast<size_t>(chain.error())];
        add_used(head, 0);
    }
    return std::nullopt;
}

void Virtqueue::add_used(uint16_t head, uint32_t written) {
    UsedElement element{head, written};
    add_used(std::span(&element, 1));
}

void Virtqueue::add_used(std::span<const UsedElement> elements) {
    for (const UsedElement& used : elements) {
        // Element 4 + 8 * (index % size) < 4 + 8 * size: inside the checked device area.
        uint8_t* element = m_used + 4 + 8 * (m_next_used % m_size);
        store32(element, used.head);
        store32(element + 4, used.written);
        m_memory->note_device_write(element, 8);
        // The device has written this chain's buffers by now: a migration must send them again.
        if (used.head < m_size) {
            for (const GuestBuffer& buffer : m_in_flight_writable[used.head])
                m_memory->note_device_write(buffer.host, buffer.length);
            m_in_flight_writable[used.head].clear();
        }
        ++m_next_used;
    }
    store16(m_used + 2, m_next_used, __ATOMIC_RELEASE);  // §2.7.8.2: elements before the index
    m_memory->note_device_write(m_used + 2, 2);
}

bool Virtqueue::should_interrupt() {
    // The used index store must be visible before the driver's used_event/flags are read.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint16_t new_used = m_next_used;
    uint16_t old_used = m_signalled_used;
    bool was_valid = m_signalled_valid;
    m_signalled_used = new_used;
    m_signalled_valid = true;
    bool wanted;
    if (m_features.event_index) {
        // §2.7.10: used_event sits after the avail ring; interrupt when the used index moved
        // past it: (new - used_event - 1) < (new - old), in 16-bit arithmetic.
        uint16_t used_event = load16(m_avail + 4 + 2 * m_size);
        wanted = !was_valid ||
                 static_cast<uint16_t>(new_used - used_event - 1) < static_cast<uint16_t>(new_used - old_used);
    } else {
        wanted = !(load16(m_avail) & k_avail_f_no_interrupt);
    }
    if (was_valid && new_used == old_used) wanted = false;  // nothing new since the last interrupt
    if (!wanted) ++m_counters.interrupts_suppressed;
    return wanted;
}

bool Virtqueue::enable_notifications() {
    if (m_broken) return false;
    if (m_features.event_index) {
        // §2.7.10: avail_event sits after the used ring; "notify me when idx passes this".
        store16(m_used + 4 + 8 * m_size, m_next_avail);
        m_memory->note_device_write(m_used + 4 + 8 * m_size, 2);
    }
    std::atomic_thread_fence(std::memory_order_seq_cst);
    return avail_index() != m_next_avail;
}

}  // namespace corral::vmm::virtio
