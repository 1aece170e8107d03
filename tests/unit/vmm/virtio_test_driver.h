#pragma once

// A driver-side view of a split virtqueue in simulated guest memory, for unit tests of the
// queue, the virtio devices and the PCI transport (virtio 1.2 §2.7 layouts).

#include <cstdint>
#include <utility>

#include "vmm/devices/virtio/queue.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm::virtio::testing {

struct TestRing {
    const GuestMemory& memory;
    uint16_t size;
    uint64_t descriptors = 0x1000;
    uint64_t avail = 0x20000;
    uint64_t used = 0x30000;
    uint16_t avail_idx = 0;

    QueueLayout layout() const { return QueueLayout{size, descriptors, avail, used}; }

    void descriptor_at(uint64_t table, uint16_t index, uint64_t address, uint32_t length, uint16_t flags,
                       uint16_t next = 0) const {
        uint64_t at = table + 16ull * index;
        memory.write_object(at, address).value();
        memory.write_object(at + 8, length).value();
        memory.write_object(at + 12, flags).value();
        memory.write_object(at + 14, next).value();
    }
    void descriptor(uint16_t index, uint64_t address, uint32_t length, uint16_t flags, uint16_t next = 0) const {
        descriptor_at(descriptors, index, address, length, flags, next);
    }
    /// Makes chain `head` available and publishes the new avail index.
    void publish(uint16_t head) {
        memory.write_object<uint16_t>(avail + 4 + 2ull * (avail_idx % size), head).value();
        ++avail_idx;
        set_avail_idx(avail_idx);
    }
    void set_avail_idx(uint16_t value) const { memory.write_object<uint16_t>(avail + 2, value).value(); }
    void set_avail_flags(uint16_t value) const { memory.write_object<uint16_t>(avail, value).value(); }
    void set_used_event(uint16_t value) const {
        memory.write_object<uint16_t>(avail + 4 + 2ull * size, value).value();
    }
    uint16_t used_idx() const { return memory.read_object<uint16_t>(used + 2).value(); }
    /// (id, len) of used ring slot `slot`.
    std::pair<uint32_t, uint32_t> used_element(uint16_t slot) const {
        uint64_t at = used + 4 + 8ull * (slot % size);
        return {memory.read_object<uint32_t>(at).value(), memory.read_object<uint32_t>(at + 4).value()};
    }
    uint16_t avail_event() const { return memory.read_object<uint16_t>(used + 4 + 8ull * size).value(); }
};

}  // namespace corral::vmm::virtio::testing

#include <mutex>
#include <vector>

#include "vmm/devices/pci/msi.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace corral::vmm::virtio::testing {

/// Records MSI routes and triggers (triggers come from device threads).
class RecordingVectors final : public MsiVectors {
public:
    void route(uint16_t vector, const MsiMessage& message) override {
        std::lock_guard lock(mutex);
        routes.push_back({vector, message});
    }
    void trigger(uint16_t vector) override {
        std::lock_guard lock(mutex);
        triggers.push_back(vector);
    }
    std::vector<uint16_t> triggered() {
        std::lock_guard lock(mutex);
        return triggers;
    }

    std::mutex mutex;
    std::vector<std::pair<uint16_t, MsiMessage>> routes;
    std::vector<uint16_t> triggers;
};

/// Records what a device signals.
class RecordingInterrupt final : public VirtioInterrupt {
public:
    void signal_queue(uint16_t index) override { queue_signals.push_back(index); }
    void signal_config_change() override { ++config_changes; }
    void set_needs_reset() override { ++needs_reset; }

    std::vector<uint16_t> queue_signals;
    int config_changes = 0;
    int needs_reset = 0;
};

}  // namespace corral::vmm::virtio::testing
