#include "storage/block_device.h"

#include <fmt/format.h>

namespace corral::storage {

Result<void> BlockDevice::check_range(const char* what, uint64_t offset, uint64_t length) const {
    uint64_t disk = size();
    if (offset > disk || length > disk - offset)
        return fail(fmt::format("{} of {} bytes at offset {} is outside the {}-byte disk", what, length,
                                offset, disk), EINVAL);
    return {};
}

}  // namespace corral::storage
