#pragma once

#include <array>
#include <cstdint>
#include <expected>
#include <span>
#include <string_view>
#include <vector>

#include "vmm/devices/virtio/queue.h"

namespace corral::storage {
class BlockDevice;
}

namespace corral::vmm::virtio::block {

/// Feature bits (virtio 1.2 §5.2.3).
constexpr uint64_t k_f_seg_max = 1ull << 2;
constexpr uint64_t k_f_ro = 1ull << 5;
constexpr uint64_t k_f_blk_size = 1ull << 6;
constexpr uint64_t k_f_flush = 1ull << 9;
constexpr uint64_t k_f_discard = 1ull << 13;
constexpr uint64_t k_f_write_zeroes = 1ull << 14;

/// Request types (§5.2.6).
constexpr uint32_t k_t_in = 0;
constexpr uint32_t k_t_out = 1;
constexpr uint32_t k_t_flush = 4;
constexpr uint32_t k_t_get_id = 8;
constexpr uint32_t k_t_discard = 11;
constexpr uint32_t k_t_write_zeroes = 13;

/// Status values (§5.2.6).
constexpr uint8_t k_s_ok = 0;
constexpr uint8_t k_s_ioerr = 1;
constexpr uint8_t k_s_unsupp = 2;

/// Flags of a discard / write-zeroes segment (§5.2.6).
constexpr uint32_t k_dwz_flag_unmap = 1;

constexpr uint64_t k_sector_size = 512;
constexpr uint32_t k_header_size = 16;   // le32 type, le32 reserved, le64 sector
constexpr uint32_t k_segment_size = 16;  // le64 sector, le32 num_sectors, le32 flags
constexpr uint32_t k_id_bytes = 20;      // VIRTIO_BLK_ID_BYTES

/// What the device accepts; fixed while the device is active.
struct RequestLimits {
    uint64_t capacity_sectors = 0;
    bool read_only = false;
    bool discard = false;       // VIRTIO_BLK_F_DISCARD negotiated
    bool write_zeroes = false;  // VIRTIO_BLK_F_WRITE_ZEROES negotiated
    uint32_t max_discard_sectors = 0;
    uint32_t max_write_zeroes_sectors = 0;
    /// Bound on one IN/OUT request's data, whatever the guest's descriptors add up to.
    uint64_t max_data_bytes = 0;
};

enum class RequestType : uint8_t { In, Out, Flush, GetId, Discard, WriteZeroes };

/// Why a request failed validation (each reason is counted).
enum class RequestError : uint8_t {
    HeaderTooShort,   // first readable buffer shorter than the 16-byte header
    UnalignedLength,  // data not a multiple of 512 bytes
    TooLarge,         // data above RequestLimits::max_data_bytes, or a range above the max sectors
    OutOfRange,       // sectors past the capacity (or an overflowing sector number)
    ReadOnly,         // a write, discard or write-zeroes on a read-only disk
    BadSegment,       // discard/write-zeroes payload not exactly one 16-byte segment
    BadFlags,         // unknown segment flags, or unmap on a discard (§5.2.6.2)
    Unsupported,      // unknown request type, or a feature the driver did not negotiate
    Count
};
std::string_view describe(RequestError error);

/// A validated request. `data` are guest buffers (device-readable for OUT, device-writable for
/// IN and GET_ID), checked to lie in guest RAM when the chain was popped; their total length is
/// `data_bytes`. The header and any discard segment were copied out, so the guest changing
/// them afterwards changes nothing.
struct Request {
    RequestType type = RequestType::In;
    uint64_t sector = 0;
    std::vector<std::span<uint8_t>> data;
    uint64_t data_bytes = 0;
    uint32_t range_sectors = 0;  // discard / write zeroes
    bool unmap = false;          // write zeroes may deallocate
};

/// A chain parsed as a virtio-blk request. `status` is the chain's last writable byte (§5.2.6:
/// the status byte ends the request). When `error` is set, the request must not be executed:
/// `status_value` (IOERR or UNSUPP) goes into the status byte.
struct ParsedRequest {
    uint8_t* status = nullptr;
    Request request;
    bool failed = false;
    RequestError error = RequestError::Unsupported;
    uint8_t status_value = k_s_ok;
};

/// Parses and validates `chain` against `limits`, touching only the header (and segment) bytes.
/// std::unexpected when the chain has no writable byte for the status: it cannot be answered
/// at all (the caller returns it used with length 0 and counts it).
std::expected<ParsedRequest, RequestError> parse_request(const DescriptorChain& chain, const RequestLimits& limits);

/// The outcome of executing a request: its status and the bytes the device wrote into the
/// chain (data plus the status byte), for the used ring.
struct Completion {
    uint8_t status = k_s_ok;
    uint32_t written = 1;
    uint64_t bytes_read = 0;     // from the disk into the guest
    uint64_t bytes_written = 0;  // from the guest to the disk
};

/// Executes a validated request on `disk` (blocking I/O: call it on a worker thread). `serial`
/// answers GET_ID (at most 20 bytes; zero-padded, no NUL when it is 20 long).
Completion execute_request(const Request& request, storage::BlockDevice& disk, std::string_view serial);

}  // namespace corral::vmm::virtio::block
