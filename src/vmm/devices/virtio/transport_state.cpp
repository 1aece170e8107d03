#include "vmm/devices/virtio/transport_state.h"

#include <type_traits>

#include "vmm/snapshot/state_stream.h"

namespace corral::vmm::virtio {

using snapshot::tag;

namespace {

// Bounds for decoding: the transport supports 64 queues; device state is small (a console's
// pending input is the largest today).
constexpr uint16_t k_max_saved_queues = 64;
constexpr size_t k_max_device_state = 1 << 20;

/// One field by its type (u8 to u64 by its size, or a bool), written or read back: the field
/// lists below serve encode and decode alike.
template <class T>
void field(snapshot::StateWriter& w, const T& value) {
    static_assert(std::is_same_v<T, bool> || (std::is_unsigned_v<T> && sizeof(T) <= 8));
    if constexpr (std::is_same_v<T, bool>) w.boolean(value);
    else if constexpr (sizeof(T) == 1) w.u8(value);
    else if constexpr (sizeof(T) == 2) w.u16(value);
    else if constexpr (sizeof(T) == 4) w.u32(value);
    else w.u64(value);
}
template <class T>
void field(snapshot::StateReader& r, T& value) {
    if constexpr (std::is_same_v<T, bool>) value = r.boolean();
    else if constexpr (sizeof(T) == 1) value = r.u8();
    else if constexpr (sizeof(T) == 2) value = r.u16();
    else if constexpr (sizeof(T) == 4) value = r.u32();
    else value = r.u64();
}

/// The transport's own fields, then a queue's, in stream order: encode() runs these with a
/// StateWriter and decode() with a StateReader, so the two cannot drift apart. Section VPCI
/// version 1: a new field means a new version.
template <class Stream, class State>
void transport_fields(Stream& s, State& state) {
    field(s, state.device_feature_select);  // u32
    field(s, state.driver_feature_select);  // u32
    field(s, state.driver_features);        // u64
    field(s, state.queue_select);           // u16
    field(s, state.status);                 // u8
    field(s, state.isr);                    // u8
    field(s, state.config_generation);      // u8
    field(s, state.config_vector);          // u16
    field(s, state.active);                 // bool
}

template <class Stream, class Queue>
void queue_fields(Stream& s, Queue& queue) {
    field(s, queue.size);  // u16
    field(s, queue.enabled);
    field(s, queue.descriptor_table);  // u64
    field(s, queue.driver_area);       // u64
    field(s, queue.device_area);       // u64
    field(s, queue.vector);            // u16
    field(s, queue.active);
    field(s, queue.position.next_avail);      // u16
    field(s, queue.position.next_used);       // u16
    field(s, queue.position.signalled_used);  // u16
    field(s, queue.position.signalled_valid);
    field(s, queue.position.broken);
    field(s, queue.rejected_reported);  // u64
    field(s, queue.broken_reported);
}

}  // namespace

void VirtioPciState::encode(snapshot::StateWriter& writer) const {
    writer.section(tag("VPCI"), 1, [&](snapshot::StateWriter& w) {
        config.encode(w);
        msix.encode(w);
        transport_fields(w, *this);
        w.u16(static_cast<uint16_t>(queues.size()));
        for (const VirtioQueueState& queue : queues) queue_fields(w, queue);
        w.bytes(device_state);
    });
}

VirtioPciState VirtioPciState::decode(snapshot::StateReader& reader) {
    VirtioPciState state;
    reader.section(tag("VPCI"), 1, [&](snapshot::StateReader& r, uint16_t) {
        state.config = PciConfigSpaceState::decode(r);
        state.msix = MsixState::decode(r);
        transport_fields(r, state);
        uint16_t count = r.u16();
        if (count > k_max_saved_queues)
            return r.fail("more queues than a virtio device has");
        for (uint16_t i = 0; i < count && r.ok(); ++i) {
            VirtioQueueState queue;
            queue_fields(r, queue);
            state.queues.push_back(queue);
        }
        state.device_state = r.bytes(k_max_device_state);
    });
    return state;
}

}  // namespace corral::vmm::virtio
