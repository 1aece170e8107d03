#pragma once

#include "vmm/control/control_request.h"

namespace corral::vmm {

struct PciDevices;

/// The control action `limits`: gives every virtio-blk device the disk rates and every
/// virtio-net device the NIC rate in both directions, while the guest runs (each bucket holds
/// one second's worth). `pci` may be null (no devices: nothing to do).
void apply_io_limits(PciDevices* pci, const IoRateLimits& limits);

}  // namespace corral::vmm
