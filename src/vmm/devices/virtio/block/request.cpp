#include "vmm/devices/virtio/block/request.h"

#include <algorithm>
#include <cstring>

#include "base/log.h"
#include "storage/block_device.h"

namespace corral::vmm::virtio::block {

std::string_view describe(RequestError error) {
    switch (error) {
        case RequestError::HeaderTooShort: return "request header shorter than 16 bytes";
        case RequestError::UnalignedLength: return "data length not a multiple of 512";
        case RequestError::TooLarge: return "request too large";
        case RequestError::OutOfRange: return "sectors past the end of the disk";
        case RequestError::ReadOnly: return "write to a read-only disk";
        case RequestError::BadSegment: return "discard/write-zeroes payload is not one 16-byte segment";
        case RequestError::BadFlags: return "bad discard/write-zeroes flags";
        case RequestError::Unsupported: return "unsupported request type";
        case RequestError::Count: break;
    }
    return "unknown";
}

namespace {

uint32_t load_le32(const uint8_t* p) {
    return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint64_t load_le64(const uint8_t* p) { return uint64_t(load_le32(p)) | uint64_t(load_le32(p + 4)) << 32; }

/// Whether [sector, sector + count) lies inside the disk, without overflowing.
bool in_range(uint64_t sector, uint64_t count, uint64_t capacity) {
    return sector <= capacity && count <= capacity - sector;
}

/// Copies `out.size()` bytes from the start of `segments` (gathering across buffers); false when
/// they hold fewer bytes.
bool gather(const std::vector<std::span<uint8_t>>& segments, std::span<uint8_t> out) {
    size_t done = 0;
    for (auto segment : segments) {
        if (done == out.size()) break;
        size_t n = std::min(segment.size(), out.size() - done);
        std::memcpy(out.data() + done, segment.data(), n);
        done += n;
    }
    return done == out.size();
}

}  // namespace

std::expected<ParsedRequest, RequestError> parse_request(const DescriptorChain& chain, const RequestLimits& limits) {
    // The status byte is the last byte of the last writable buffer; the queue guarantees buffers
    // are non-empty and lie in guest RAM (checked through GuestMemory::host_pointer at pop()).
    if (chain.writable.empty()) return std::unexpected(RequestError::HeaderTooShort);
    ParsedRequest parsed;
    const GuestBuffer& last = chain.writable.back();
    parsed.status = last.host + last.length - 1;

    auto reject = [&](RequestError error, uint8_t status = k_s_ioerr) {
        parsed.failed = true;
        parsed.error = error;
        parsed.status_value = status;
        parsed.request.data.clear();
        parsed.request.data_bytes = 0;
        return parsed;
    };

    // The header: the first 16 bytes of the first device-readable buffer, copied once.
    if (chain.readable.empty() || chain.readable[0].length < k_header_size)
        return reject(RequestError::HeaderTooShort);
    uint8_t header[k_header_size];
    std::memcpy(header, chain.readable[0].host, k_header_size);
    uint32_t type = load_le32(header);
    Request& request = parsed.request;
    request.sector = load_le64(header + 8);

    // Device-readable data after the header, and device-writable data before the status byte.
    std::vector<std::span<uint8_t>> readable_data, writable_data;
    uint64_t readable_bytes = 0, writable_bytes = 0;
    if (chain.readable[0].length > k_header_size)
        readable_data.emplace_back(chain.readable[0].host + k_header_size, chain.readable[0].length - k_header_size);
    for (size_t i = 1; i < chain.readable.size(); ++i)
        readable_data.emplace_back(chain.readable[i].host, chain.readable[i].length);
    for (size_t i = 0; i + 1 < chain.writable.size(); ++i)
        writable_data.emplace_back(chain.writable[i].host, chain.writable[i].length);
    if (last.length > 1) writable_data.emplace_back(last.host, last.length - 1);
    for (auto s : readable_data) readable_bytes += s.size();
    for (auto s : writable_data) writable_bytes += s.size();

    auto check_io = [&](uint64_t bytes) -> std::optional<RequestError> {
        if (bytes % k_sector_size != 0) return RequestError::UnalignedLength;
        if (bytes > limits.max_data_bytes) return RequestError::TooLarge;
        if (!in_range(request.sector, bytes / k_sector_size, limits.capacity_sectors)) return RequestError::OutOfRange;
        return std::nullopt;
    };

    switch (type) {
        case k_t_in:
            request.type = RequestType::In;
            if (auto error = check_io(writable_bytes)) return reject(*error);
            request.data = std::move(writable_data);
            request.data_bytes = writable_bytes;
            return parsed;
        case k_t_out:
            request.type = RequestType::Out;
            if (limits.read_only) return reject(RequestError::ReadOnly);
            if (auto error = check_io(readable_bytes)) return reject(*error);
            request.data = std::move(readable_data);
            request.data_bytes = readable_bytes;
            return parsed;
        case k_t_flush:
            request.type = RequestType::Flush;
            return parsed;
        case k_t_get_id:
            request.type = RequestType::GetId;
            request.data = std::move(writable_data);
            request.data_bytes = writable_bytes;
            return parsed;
        case k_t_discard:
        case k_t_write_zeroes: {
            bool discard = type == k_t_discard;
            request.type = discard ? RequestType::Discard : RequestType::WriteZeroes;
            if (discard ? !limits.discard : !limits.write_zeroes)
                return reject(RequestError::Unsupported, k_s_unsupp);
            if (limits.read_only) return reject(RequestError::ReadOnly);
            // max_discard_seg = max_write_zeroes_seg = 1: exactly one segment.
            if (readable_bytes != k_segment_size) return reject(RequestError::BadSegment);
            uint8_t segment[k_segment_size];
            gather(readable_data, segment);
            uint64_t sector = load_le64(segment);
            uint32_t sectors = load_le32(segment + 8);
            uint32_t flags = load_le32(segment + 12);
            // §5.2.6.2: unknown flags, or unmap on a discard, are UNSUPP.
            if ((flags & ~k_dwz_flag_unmap) != 0 || (discard && (flags & k_dwz_flag_unmap)))
                return reject(RequestError::BadFlags, k_s_unsupp);
            if (sectors > (discard ? limits.max_discard_sectors : limits.max_write_zeroes_sectors))
                return reject(RequestError::TooLarge);
            if (!in_range(sector, sectors, limits.capacity_sectors)) return reject(RequestError::OutOfRange);
            request.sector = sector;
            request.range_sectors = sectors;
            request.unmap = (flags & k_dwz_flag_unmap) != 0;
            return parsed;
        }
        default:
            return reject(RequestError::Unsupported, k_s_unsupp);
    }
}

Completion execute_request(const Request& request, storage::BlockDevice& disk, std::string_view serial) {
    Completion completion;
    auto io_failed = [&](const Error& error) {
        log_debug("virtio-blk: {} failed: {}", static_cast<int>(request.type), error.describe());
        completion.status = k_s_ioerr;
    };
    uint64_t offset = request.sector * k_sector_size;  // < capacity * 512: checked by parse_request
    switch (request.type) {
        case RequestType::In:
            for (auto segment : request.data) {
                if (auto result = disk.read_at(offset, segment); !result) {
                    io_failed(result.error());
                    break;
                }
                offset += segment.size();
                completion.bytes_read += segment.size();
            }
            // Bounded by max_data_bytes (< 4 GiB), so it fits the used ring's 32-bit length.
            completion.written = static_cast<uint32_t>(completion.bytes_read) + 1;
            break;
        case RequestType::Out:
            for (auto segment : request.data) {
                if (auto result = disk.write_at(offset, segment); !result) {
                    io_failed(result.error());
                    break;
                }
                offset += segment.size();
                completion.bytes_written += segment.size();
            }
            break;
        case RequestType::Flush:
            if (!disk.read_only())
                if (auto result = disk.flush(); !result) io_failed(result.error());
            break;
        case RequestType::GetId: {
            std::array<uint8_t, k_id_bytes> id{};
            std::memcpy(id.data(), serial.data(), std::min<size_t>(serial.size(), k_id_bytes));
            uint32_t done = 0;
            for (auto segment : request.data) {
                size_t n = std::min<size_t>(segment.size(), k_id_bytes - done);
                std::memcpy(segment.data(), id.data() + done, n);
                done += static_cast<uint32_t>(n);
                if (done == k_id_bytes) break;
            }
            completion.written = done + 1;
            break;
        }
        case RequestType::Discard:
        case RequestType::WriteZeroes: {
            uint64_t length = uint64_t(request.range_sectors) * k_sector_size;
            if (length == 0) break;
            auto result = request.type == RequestType::Discard ? disk.discard(offset, length)
                                                               : disk.write_zeroes(offset, length);
            if (!result) io_failed(result.error());
            break;
        }
    }
    return completion;
}

}  // namespace corral::vmm::virtio::block
