#pragma once

#include <cstdint>
#include <vector>

#include "vmm/devices/pci/pci_state.h"
#include "vmm/devices/virtio/queue.h"

namespace corral::vmm::virtio {

/// One queue as the transport and the device left it: the driver's settings, and, when the
/// device was serving it, where the device was in the rings.
struct VirtioQueueState {
    uint16_t size = 0;
    bool enabled = false;
    uint64_t descriptor_table = 0;
    uint64_t driver_area = 0;
    uint64_t device_area = 0;
    uint16_t vector = 0xFFFF;
    bool active = false;  // the device held it: `position` and the two flags below are valid
    QueuePosition position;
    uint64_t rejected_reported = 0;
    bool broken_reported = false;
    bool operator==(const VirtioQueueState&) const = default;
};

/// What a VirtioPciTransport saves, its device's own state included (as the device wrote it,
/// opaque here). Section "VPCI", version 1.
struct VirtioPciState {
    PciConfigSpaceState config;
    MsixState msix;
    uint32_t device_feature_select = 0;
    uint32_t driver_feature_select = 0;
    uint64_t driver_features = 0;
    uint16_t queue_select = 0;
    uint8_t status = 0;
    uint8_t isr = 0;
    uint8_t config_generation = 0;
    uint16_t config_vector = 0xFFFF;
    bool active = false;  // DRIVER_OK reached and the device was serving (resume activates it)
    std::vector<VirtioQueueState> queues;  // one per queue of the device
    std::vector<uint8_t> device_state;     // the device's save_state() bytes

    void encode(snapshot::StateWriter& writer) const;
    static VirtioPciState decode(snapshot::StateReader& reader);
    bool operator==(const VirtioPciState&) const = default;
};

}  // namespace corral::vmm::virtio
