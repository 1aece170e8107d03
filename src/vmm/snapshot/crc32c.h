#pragma once

#include <cstdint>
#include <span>

namespace corral::vmm::snapshot {

/// CRC-32C (Castagnoli, the polynomial iSCSI, ext4 and Btrfs use) of `bytes`, continuing from
/// `crc` (0 to start). Software, table-driven: snapshot state is small; memory files are not
/// checksummed with it page by page.
uint32_t crc32c(std::span<const uint8_t> bytes, uint32_t crc = 0);

}  // namespace corral::vmm::snapshot
