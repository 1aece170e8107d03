#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"
#include "vmm/devices/virtio/queue.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm::snapshot {
class StateWriter;
class StateReader;
}  // namespace corral::vmm::snapshot

namespace corral::vmm::virtio {

/// Reserved feature bits (virtio 1.2 §6).
constexpr uint64_t k_f_ring_indirect_desc = 1ull << 28;
constexpr uint64_t k_f_ring_event_idx = 1ull << 29;
constexpr uint64_t k_f_version_1 = 1ull << 32;

/// Device IDs (virtio 1.2 §5).
enum class DeviceType : uint32_t { Net = 1, Block = 2, Console = 3, Entropy = 4, Balloon = 5, Gpu = 16, Input = 18 };

/// How a device talks back to the driver; the transport implements it. Called from device
/// worker threads; must not block.
class VirtioInterrupt {
public:
    virtual ~VirtioInterrupt() = default;
    /// Used buffers were added to queue `index` (the device checked should_interrupt()).
    virtual void signal_queue(uint16_t index) = 0;
    virtual void signal_config_change() = 0;
    /// The device cannot go on (a broken queue): sets DEVICE_NEEDS_RESET (§2.1.2) and sends a
    /// configuration change notification.
    virtual void set_needs_reset() = 0;
};

/// One queue handed to a device at activation: the validated ring, and the eventfd the guest's
/// notifications arrive on (a KVM ioeventfd; the device reads it on its event loop).
struct ActiveQueue {
    Virtqueue queue;
    int notify_fd;
    uint64_t rejected_reported = 0;  // rejected chains already added to DeviceCounters
    bool broken_reported = false;    // set_needs_reset() already called for this queue
};

/// Everything a device needs to run, from DRIVER_OK until reset.
struct ActivateContext {
    const GuestMemory& memory;
    uint64_t features;                              // negotiated
    std::vector<std::optional<ActiveQueue>> queues; // by queue index; nullopt: not enabled
    VirtioInterrupt& interrupt;                     // valid until reset() returns
};

/// Counters every virtio device keeps (read with snapshot(); no API exposes them yet).
struct DeviceCounters {
    std::atomic<uint64_t> requests{0};         // chains served
    std::atomic<uint64_t> bytes{0};            // payload bytes moved (either direction)
    std::atomic<uint64_t> errors{0};           // requests that failed (host errors, bad requests)
    std::atomic<uint64_t> rejected_chains{0};  // malformed chains the queue refused

    struct Snapshot {
        uint64_t requests, bytes, errors, rejected_chains;
    };
    Snapshot snapshot() const {
        return {requests.load(), bytes.load(), errors.load(), rejected_chains.load()};
    }
};

/// A virtio device, independent of its transport (PCI today, MMIO possibly later): the
/// transport negotiates features, collects queue addresses, and calls activate() at
/// DRIVER_OK and reset() when the driver writes status 0.
class VirtioDevice {
public:
    virtual ~VirtioDevice() = default;
    virtual DeviceType device_type() const = 0;
    /// Device-specific feature bits (the transport adds VERSION_1 and the ring features).
    virtual uint64_t device_features() const = 0;
    /// Maximum sizes of the device's queues; its length is the number of queues.
    virtual std::span<const uint16_t> queue_max_sizes() const = 0;
    /// Size of the device-specific configuration space (0: none).
    virtual uint32_t config_size() const = 0;
    /// Device configuration accesses; `offset` + size <= config_size() (checked by the transport).
    virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write_config(uint64_t offset, std::span<const uint8_t> data) = 0;
    /// Starts serving the queues. An error leaves the device inactive (the transport then
    /// sets DEVICE_NEEDS_RESET).
    virtual Result<void> activate(ActivateContext context) = 0;
    /// Stops serving the queues; when it returns the device no longer touches guest memory
    /// or the interrupt. Safe to call when not active.
    virtual void reset() = 0;
    /// Stops serving the queues while the VM is paused (a snapshot): completes what is in
    /// flight (popped chains are returned used, with their interrupts), stops the worker, and
    /// hands the queues back as they are, by index (nullopt: not active). When it returns the
    /// device no longer touches guest memory; activate() with the same queues resumes it.
    /// Host-side state (an input buffer) is kept for that activate(). Safe when not active.
    virtual std::vector<std::optional<ActiveQueue>> quiesce() = 0;
    /// Device-specific state beyond the queues (its own section), for a snapshot; called while
    /// quiesced or inactive. Most devices have none.
    virtual void save_state(snapshot::StateWriter&) const {}
    /// Reads what save_state() wrote (errors are recorded in the reader) and applies it after
    /// checking it; called on a fresh, inactive device.
    virtual Result<void> restore_state(snapshot::StateReader&) { return {}; }
    virtual DeviceCounters::Snapshot counters() const = 0;
};

}  // namespace corral::vmm::virtio
