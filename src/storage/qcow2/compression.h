#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "storage/qcow2/format.h"

namespace corral::storage::qcow2 {

/// Decompresses one cluster: `input` may carry trailing bytes (the descriptor is sector-granular);
/// decompression stops once `output` (exactly one cluster) is full. Fails if the data ends early.
Result<void> decompress_cluster(CompressionType type, std::span<const uint8_t> input, std::span<uint8_t> output);

/// Compresses one cluster (raw deflate for zlib, a zstd frame for zstd). Returns an empty vector
/// when the result would not be smaller than `max_size` (the caller then stores it uncompressed).
Result<std::vector<uint8_t>> compress_cluster(CompressionType type, std::span<const uint8_t> input,
                                              size_t max_size);

}  // namespace corral::storage::qcow2
