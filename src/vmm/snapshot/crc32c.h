#pragma once

#include <cstdint>
#include <span>

namespace corral::vmm::snapshot {

/// CRC-32C (Castagnoli, the polynomial iSCSI, ext4 and Btrfs use) of `bytes`, continuing from
/// `crc` (0 to start). With the CPU's CRC32 instruction (SSE4.2) where there is one: every page a
/// migration sends is checked on both sides, and a byte-at-a-time table held the stream to about
/// a gigabyte per second. Else table-driven.
uint32_t crc32c(std::span<const uint8_t> bytes, uint32_t crc = 0);

/// The table-driven computation alone (what crc32c() falls back to), for tests to compare with.
uint32_t crc32c_portable(std::span<const uint8_t> bytes, uint32_t crc = 0);

}  // namespace corral::vmm::snapshot
