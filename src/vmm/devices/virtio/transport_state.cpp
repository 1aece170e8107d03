#include "vmm/devices/virtio/transport_state.h"

#include "vmm/snapshot/state_stream.h"

namespace corral::vmm::virtio {

using snapshot::tag;

namespace {

// Bounds for decoding: the transport supports 64 queues; device state is small (a console's
// pending input is the largest today).
constexpr uint16_t k_max_saved_queues = 64;
constexpr size_t k_max_device_state = 1 << 20;

}  // namespace

void VirtioPciState::encode(snapshot::StateWriter& writer) const {
    writer.section(tag("VPCI"), 1, [&](snapshot::StateWriter& w) {
        config.encode(w);
        msix.encode(w);
        w.u32(device_feature_select);
        w.u32(driver_feature_select);
        w.u64(driver_features);
        w.u16(queue_select);
        w.u8(status);
        w.u8(isr);
        w.u8(config_generation);
        w.u16(config_vector);
        w.boolean(active);
        w.u16(static_cast<uint16_t>(queues.size()));
        for (const VirtioQueueState& queue : queues) {
            w.u16(queue.size);
            w.boolean(queue.enabled);
            w.u64(queue.descriptor_table);
            w.u64(queue.driver_area);
            w.u64(queue.device_area);
            w.u16(queue.vector);
            w.boolean(queue.active);
            w.u16(queue.position.next_avail);
            w.u16(queue.position.next_used);
            w.u16(queue.position.signalled_used);
            w.boolean(queue.position.signalled_valid);
            w.boolean(queue.position.broken);
            w.u64(queue.rejected_reported);
            w.boolean(queue.broken_reported);
        }
        w.bytes(device_state);
    });
}

VirtioPciState VirtioPciState::decode(snapshot::StateReader& reader) {
    VirtioPciState state;
    reader.section(tag("VPCI"), 1, [&](snapshot::StateReader& r, uint16_t) {
        state.config = PciConfigSpaceState::decode(r);
        state.msix = MsixState::decode(r);
        state.device_feature_select = r.u32();
        state.driver_feature_select = r.u32();
        state.driver_features = r.u64();
        state.queue_select = r.u16();
        state.status = r.u8();
        state.isr = r.u8();
        state.config_generation = r.u8();
        state.config_vector = r.u16();
        state.active = r.boolean();
        uint16_t count = r.u16();
        if (count > k_max_saved_queues)
            return r.fail("more queues than a virtio device has");
        for (uint16_t i = 0; i < count && r.ok(); ++i) {
            VirtioQueueState queue;
            queue.size = r.u16();
            queue.enabled = r.boolean();
            queue.descriptor_table = r.u64();
            queue.driver_area = r.u64();
            queue.device_area = r.u64();
            queue.vector = r.u16();
            queue.active = r.boolean();
            queue.position.next_avail = r.u16();
            queue.position.next_used = r.u16();
            queue.position.signalled_used = r.u16();
            queue.position.signalled_valid = r.boolean();
            queue.position.broken = r.boolean();
            queue.rejected_reported = r.u64();
            queue.broken_reported = r.boolean();
            state.queues.push_back(queue);
        }
        state.device_state = r.bytes(k_max_device_state);
    });
    return state;
}

}  // namespace corral::vmm::virtio
