#include "vmm/devices/virtio/block/open_disk.h"

#include <fmt/format.h>

#include "storage/image.h"

namespace corral::vmm::virtio {

Result<std::unique_ptr<storage::BlockDevice>> open_disk(const DiskConfig& config) {
    storage::ImageOpenOptions options;
    options.access = config.read_only ? storage::Access::ReadOnly : storage::Access::ReadWrite;
    if (config.format == DiskFormat::Raw) options.format = storage::ImageFormat::Raw;
    if (config.format == DiskFormat::Qcow2) options.format = storage::ImageFormat::Qcow2;
    auto disk = TRY_CONTEXT(storage::open_image(config.path, options), fmt::format("--disk path={}", config.path));
    if (disk->size() % block::k_sector_size != 0)
        return fail(fmt::format("--disk path={}: the image size {} is not a multiple of 512 bytes", config.path,
                                disk->size()));
    return disk;
}

BlockOptions block_options(const DiskConfig& config) {
    BlockOptions options;
    options.serial = config.serial;
    if (config.bytes_per_second) options.bandwidth = TokenBucketConfig{config.bytes_per_second, 0};
    if (config.ops_per_second) options.iops = TokenBucketConfig{config.ops_per_second, 0};
    return options;
}

}  // namespace corral::vmm::virtio
