#pragma once

#include <unistd.h>

#include <cstdint>

#include "vmm/devices/virtio/virtio_device.h"

namespace corral::vmm::virtio {

/// Reads (clears) a notification eventfd; non-blocking.
inline void drain_event_fd(int fd) {
    uint64_t value;
    [[maybe_unused]] ssize_t n = ::read(fd, &value, sizeof value);
}

/// The body of a queue notification handler, shared by devices: consumes the notify eventfd,
/// pops every available chain and passes it to `handle` (which returns the bytes it wrote into
/// the chain's writable buffers), returns the chains used, re-enables notifications and
/// re-checks (§2.7.10), interrupts the driver when it wants to hear, reports a broken queue
/// once (DEVICE_NEEDS_RESET) and adds rejected chains to the device counters.
/// Runs on the device's event loop thread.
template <typename Handler>
void serve_queue(ActiveQueue& active, uint16_t index, VirtioInterrupt& interrupt, DeviceCounters& counters,
                 Handler&& handle) {
    drain_event_fd(active.notify_fd);
    Virtqueue& queue = active.queue;
    bool used_any = false;
    do {
        while (auto chain = queue.pop()) {
            uint32_t written = handle(*chain);
            queue.add_used(chain->head, written);
            used_any = true;
        }
    } while (queue.enable_notifications());
    uint64_t rejected = queue.counters().rejected_chains;
    if (rejected != active.rejected_reported) {
        counters.rejected_chains += rejected - active.rejected_reported;
        active.rejected_reported = rejected;
        used_any = true;  // rejected chains were returned used too
    }
    if (used_any && queue.should_interrupt()) interrupt.signal_queue(index);
    if (queue.broken() && !active.broken_reported) {
        active.broken_reported = true;
        ++counters.errors;
        interrupt.set_needs_reset();
    }
}

}  // namespace corral::vmm::virtio
