#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "base/result.h"

namespace corral::storage {

/// What a range of the virtual disk is backed by (for `map` and convert's zero detection).
enum class ExtentKind { Data, Zero, Unallocated };

struct Extent {
    uint64_t offset = 0;       ///< guest offset
    uint64_t length = 0;
    ExtentKind kind = ExtentKind::Data;
    int depth = 0;             ///< 0 = this image, 1 = its backing file, ...
    bool has_host_offset = false;
    uint64_t host_offset = 0;  ///< where the data lives in the (depth-th) file, when known
    bool compressed = false;
};

/// The virtual disk as a guest device sees it: byte-addressed reads and writes, plus small
/// capabilities (flush, discard, write_zeroes, resize). virtio-blk calls this.
///
/// Alignment rules: read_at/write_at accept any byte range inside [0, size()); formats handle
/// partial sectors and clusters themselves (virtio-blk sends 512-byte sectors anyway).
/// write_zeroes zeroes exactly the range given. discard is a hint: parts of the range that are
/// not aligned to discard_granularity() may be left as they are; discarded ranges read as zeros
/// on both raw and qcow2 here. Requests past size() fail and change nothing.
class BlockDevice {
public:
    virtual ~BlockDevice() = default;

    virtual std::string format_name() const = 0;
    virtual uint64_t size() const = 0;
    virtual bool read_only() const = 0;
    virtual Result<void> read_at(uint64_t offset, std::span<uint8_t> buffer) = 0;
    virtual Result<void> write_at(uint64_t offset, std::span<const uint8_t> data) = 0;
    /// Makes every completed write durable (fdatasync at the format's flush barriers).
    virtual Result<void> flush() = 0;
    virtual uint64_t discard_granularity() const { return 512; }
    virtual Result<void> discard(uint64_t offset, uint64_t length) = 0;
    virtual Result<void> write_zeroes(uint64_t offset, uint64_t length) = 0;
    /// Grows the virtual disk; shrinking is refused.
    virtual Result<void> resize(uint64_t new_size) = 0;
    /// Describes the extent that starts at `offset` (at most `max_length` bytes long).
    virtual Result<Extent> block_status(uint64_t offset, uint64_t max_length) = 0;

protected:
    /// Fails with a message naming the request when it does not fit inside the disk.
    Result<void> check_range(const char* what, uint64_t offset, uint64_t length) const;
};

}  // namespace corral::storage
