#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm::virtio {

/// Descriptor flags (virtio 1.2 §2.7.5).
constexpr uint16_t k_desc_f_next = 1;
constexpr uint16_t k_desc_f_write = 2;
constexpr uint16_t k_desc_f_indirect = 4;
/// Driver area flag: "do not interrupt me" (§2.7.6), without VIRTIO_F_EVENT_IDX.
constexpr uint16_t k_avail_f_no_interrupt = 1;
/// The largest split queue (§2.7: "The maximum Queue Size value is 32768").
constexpr uint16_t k_max_queue_size = 32768;

/// Where the driver put a split virtqueue (common cfg queue_desc/queue_driver/queue_device).
struct QueueLayout {
    uint16_t size = 0;
    uint64_t descriptor_table = 0;
    uint64_t driver_area = 0;  // the available ring
    uint64_t device_area = 0;  // the used ring
};

/// Negotiated features that change how the queue is read.
struct QueueFeatures {
    bool indirect_descriptors = false;  // VIRTIO_F_RING_INDIRECT_DESC (28)
    bool event_index = false;           // VIRTIO_F_RING_EVENT_IDX (29)
};

/// One guest buffer of a validated chain: `host` points at `length` bytes of guest RAM
/// (checked through GuestMemory::host_pointer when the chain was parsed).
struct GuestBuffer {
    uint8_t* host;
    uint32_t length;
};

/// A validated descriptor chain: device-readable buffers first, then device-writable ones.
struct DescriptorChain {
    uint16_t head = 0;
    std::vector<GuestBuffer> readable;
    std::vector<GuestBuffer> writable;
    uint64_t readable_bytes = 0;
    uint64_t writable_bytes = 0;
};

/// One entry of the used ring: a chain's head and the bytes the device wrote into it.
struct UsedElement {
    uint16_t head;
    uint32_t written;
};

/// Why a chain was rejected (each reason is counted).
enum class ChainError : uint8_t {
    TooLong,               // more descriptors than the queue size: a loop or an oversized chain
    NextOutOfRange,        // `next` beyond the descriptor table
    BadAddress,            // a buffer or indirect table that is not guest RAM
    ZeroLength,            // a buffer of length 0
    IndirectNotNegotiated, // F_INDIRECT without VIRTIO_F_RING_INDIRECT_DESC
    NestedIndirect,        // F_INDIRECT inside an indirect table (§2.7.5.3.1)
    IndirectWithNext,      // F_INDIRECT together with F_NEXT (§2.7.5.3.1)
    BadIndirectLength,     // an indirect table of length 0 or not a multiple of 16
    ReadableAfterWritable, // a device-readable buffer after a device-writable one (§2.7.4.2)
    Count
};
std::string_view describe(ChainError error);

/// Counters of one queue.
struct QueueCounters {
    uint64_t chains = 0;                 // valid chains popped
    uint64_t rejected_chains = 0;        // malformed chains (returned used with length 0)
    std::array<uint64_t, static_cast<size_t>(ChainError::Count)> rejected_by_reason{};
    uint64_t interrupts_suppressed = 0;  // used buffers the driver asked not to hear about
};

/// Where the device is in a queue's rings: what a snapshot keeps of a Virtqueue besides its
/// layout (the rings themselves are in guest memory).
struct QueuePosition {
    uint16_t next_avail = 0;
    uint16_t next_used = 0;
    uint16_t signalled_used = 0;  // used index at the last interrupt decision (EVENT_IDX)
    bool signalled_valid = false;
    bool broken = false;
    bool operator==(const QueuePosition&) const = default;
};

/// A split virtqueue (virtio 1.2 §2.7) as the device side sees it; the one queue every virtio
/// device uses.
///
/// The guest is hostile: the rings are checked to lie in RAM (and be aligned, §2.7.1) when the
/// queue is created; every chain is walked and validated in full (lengths, addresses through
/// GuestMemory::host_pointer, loops, nesting, ordering) before the device sees any of it, and
/// descriptors are copied out once so the guest cannot change them between check and use.
/// A malformed chain is counted and returned to the driver used, with length 0 (so its
/// descriptors are not lost); an avail index more than the queue size ahead, or an avail ring
/// entry naming a descriptor beyond the table, cannot be answered and breaks the queue:
/// broken() turns true and the device should ask for a reset (DEVICE_NEEDS_RESET, §2.1.2).
///
/// Indices are free-running 16-bit counters (§2.7.6, §2.7.8): they wrap at 65536, and ring
/// slots are index % size, which is consistent across the wrap because size is a power of two.
///
/// Memory ordering with the driver (§2.7.13): the avail index is loaded with acquire before the
/// ring and descriptors are read; used elements are written before the used index is stored
/// with release; a full fence separates publishing the used index from reading used_event,
/// and publishing avail_event from re-reading the avail index.
///
/// Not thread-safe: owned by one device worker.
class Virtqueue {
public:
    /// Checks `layout` (power-of-two size up to 32768, ring alignment, rings in RAM).
    static Result<Virtqueue> create(const GuestMemory& memory, const QueueLayout& layout,
                                    QueueFeatures features);

    /// The next valid chain, skipping (and returning used) malformed ones; nullopt when the driver
    /// has made nothing more available or the queue is broken.
    std::optional<DescriptorChain> pop();
    /// Returns chain `head` to the driver with `written` bytes written into its buffers.
    void add_used(uint16_t head, uint32_t written);
    /// Returns several chains at once: every element is written before the used index moves,
    /// once, so the driver sees all of them or none (a packet over several buffers, §5.1.6.4).
    /// At most size() elements (more would overwrite entries the driver has not read).
    void add_used(std::span<const UsedElement> elements);
    /// Whether the driver wants an interrupt for the used buffers added since the last call
    /// (§2.7.7.2 without, §2.7.10 with VIRTIO_F_EVENT_IDX).
    bool should_interrupt();
    /// Asks the driver to notify for the next buffer it makes available (avail_event under
    /// EVENT_IDX) and re-checks: true when more buffers are already there (pop again).
    bool enable_notifications();

    bool broken() const { return m_broken; }
    const QueueCounters& counters() const { return m_counters; }
    uint16_t size() const { return m_size; }
    uint16_t next_avail() const { return m_next_avail; }
    uint16_t next_used() const { return m_next_used; }

    /// The device's place in the rings, for a snapshot.
    QueuePosition position() const {
        return {m_next_avail, m_next_used, m_signalled_used, m_signalled_valid, m_broken};
    }
    /// Continues from a saved place (any 16-bit indices are consistent: they are free-running,
    /// and every avail index read is checked against next_avail anyway).
    void set_position(const QueuePosition& position) {
        m_next_avail = position.next_avail;
        m_next_used = position.next_used;
        m_signalled_used = position.signalled_used;
        m_signalled_valid = position.signalled_valid;
        m_broken = position.broken;
    }

private:
    struct Descriptor {
        uint64_t address;
        uint32_t length;
        uint16_t flags;
        uint16_t next;
    };
    static_assert(sizeof(Descriptor) == 16);

    Virtqueue(const GuestMemory& memory, uint16_t size, uint8_t* table, uint8_t* avail, uint8_t* used,
              QueueFeatures features)
        : m_memory(&memory), m_size(size), m_table(table), m_avail(avail), m_used(used),
          m_features(features),
          m_in_flight_writable(size) {}

    std::expected<DescriptorChain, ChainError> parse_chain(uint16_t head) const;
    uint16_t avail_index() const;

    const GuestMemory* m_memory;
    uint16_t m_size;
    // Host pointers into guest RAM, checked in create(): the table holds 16 * size bytes, the
    // driver area 6 + 2 * size, the device area 6 + 8 * size.
    uint8_t* m_table;
    uint8_t* m_avail;
    uint8_t* m_used;
    QueueFeatures m_features;
    /// The writable buffers of each chain popped and not yet used, by head: add_used() notes
    /// them as device writes (GuestMemory::note_device_write) for a live migration. Slots keep
    /// their capacity, so this allocates only while a queue warms up.
    std::vector<std::vector<GuestBuffer>> m_in_flight_writable;
    uint16_t m_next_avail = 0;
    uint16_t m_next_used = 0;
    uint16_t m_signalled_used = 0;
    bool m_signalled_valid = false;
    bool m_broken = false;
    QueueCounters m_counters;
};

}  // namespace corral::vmm::virtio
