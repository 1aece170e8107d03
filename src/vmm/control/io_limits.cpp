#include "vmm/control/io_limits.h"

#include <optional>

#include "base/log.h"
#include "vmm/devices/virtio/block/block_device.h"
#include "vmm/devices/virtio/net/net_device.h"
#include "vmm/devices/virtio/pci_transport.h"
#include "vmm/pci_setup.h"

namespace corral::vmm {
namespace {

std::optional<TokenBucketConfig> bucket(uint64_t rate) {
    if (rate == 0)
        return std::nullopt;
    return TokenBucketConfig{rate, 0};
}

}  // namespace

void apply_io_limits(PciDevices* pci, const IoRateLimits& limits) {
    if (!pci)
        return;
    for (const auto& transport : pci->transports) {
        virtio::VirtioDevice& device = transport->device();
        if (auto* block = dynamic_cast<virtio::BlockDevice*>(&device))
            block->set_rate_limits(bucket(limits.disk_bytes_per_s), bucket(limits.disk_ops_per_s));
        if (auto* net = dynamic_cast<virtio::NetDevice*>(&device))
            net->set_rate_limits(
                {bucket(limits.nic_bytes_per_s), std::nullopt, bucket(limits.nic_bytes_per_s), std::nullopt});
    }
    log_info("limits: disks {} B/s and {} ops/s, NICs {} B/s each way (0: unlimited)", limits.disk_bytes_per_s,
             limits.disk_ops_per_s, limits.nic_bytes_per_s);
}

}  // namespace corral::vmm
