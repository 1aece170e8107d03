#pragma once

// Copying a whole virtual disk from one image to another, keeping it sparse.

#include <cstdint>
#include <functional>

#include "storage/block_device.h"

namespace corral::storage {

/// What a Progress callback answers: go on, or cancel the operation, which then stops at its next
/// chunk, fails with ECANCELED and leaves nothing of what it was making behind.
enum class Proceed { Continue, Cancel };

/// Reports a long operation: `done` of `total` bytes. Calls are monotonic, at most about ten a
/// second, and the last one has done == total (after the data is flushed; it may still cancel).
using Progress = std::function<Proceed(uint64_t done, uint64_t total)>;

/// Copies every byte of `src` into `dst` (which must be at least as large and read as zeros, as a
/// freshly created image does). Ranges that are unallocated or zero in `src`, and `dst` clusters
/// (4 KiB for raw) whose new content is all zeros, are not written, so `dst` stays sparse.
/// Flushes `dst` at the end. ECANCELED when `progress` asked to cancel (`dst` then holds part of
/// the data: the caller removes it).
Result<void> copy_image_data(BlockDevice& src, BlockDevice& dst, const Progress& progress);

}  // namespace corral::storage
