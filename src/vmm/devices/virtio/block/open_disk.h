#pragma once

#include <memory>

#include "base/result.h"
#include "storage/block_device.h"
#include "vmm/config/disk_config.h"
#include "vmm/devices/virtio/block/block_device.h"

namespace corral::vmm::virtio {

/// Opens a --disk image with corral_storage (raw or qcow2 with its backing chain; read-only
/// when asked). Errors name the option and the path.
Result<std::unique_ptr<storage::BlockDevice>> open_disk(const DiskConfig& config);

/// The BlockOptions (serial, rate limits) of a --disk.
BlockOptions block_options(const DiskConfig& config);

}  // namespace corral::vmm::virtio
