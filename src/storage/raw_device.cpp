#include "storage/raw_device.h"

#include <fmt/format.h>
#include <unistd.h>

namespace corral::storage {

Result<std::unique_ptr<RawDevice>> RawDevice::open(File file) {
    uint64_t size = TRY(file.size());
    return std::make_unique<RawDevice>(std::move(file), size);
}

Result<void> RawDevice::create(const std::string& path, uint64_t size) {
    // Exclusive like qcow2: callers write a fresh temporary name and rename it into place.
    File file = TRY(File::create(path, CreateMode::Exclusive));
    TRY_VOID(file.truncate(size));
    return file.sync();
}

Result<void> RawDevice::read_at(uint64_t offset, std::span<uint8_t> buffer) {
    TRY_VOID(check_range("read", offset, buffer.size()));
    return m_file.read_zero_fill(offset, buffer);
}

Result<void> RawDevice::write_at(uint64_t offset, std::span<const uint8_t> data) {
    if (read_only()) return fail(fmt::format("'{}' is open read-only", m_file.path()), EROFS);
    TRY_VOID(check_range("write", offset, data.size()));
    return m_file.write_all(offset, data);
}

Result<void> RawDevice::flush() {
    if (read_only()) return {};
    return m_file.sync();
}

Result<void> RawDevice::discard(uint64_t offset, uint64_t length) {
    if (read_only()) return fail(fmt::format("'{}' is open read-only", m_file.path()), EROFS);
    TRY_VOID(check_range("discard", offset, length));
    return m_file.punch_hole(offset, length);
}

Result<void> RawDevice::write_zeroes(uint64_t offset, uint64_t length) {
    if (read_only()) return fail(fmt::format("'{}' is open read-only", m_file.path()), EROFS);
    TRY_VOID(check_range("write_zeroes", offset, length));
    return m_file.punch_hole(offset, length);
}

Result<void> RawDevice::resize(uint64_t new_size) {
    if (read_only()) return fail(fmt::format("'{}' is open read-only", m_file.path()), EROFS);
    if (new_size < m_size)
        return fail(fmt::format("shrinking '{}' from {} to {} bytes is not supported", m_file.path(), m_size,
                                new_size));
    TRY_VOID(m_file.truncate(new_size));
    m_size = new_size;
    return {};
}

Result<Extent> RawDevice::block_status(uint64_t offset, uint64_t max_length) {
    TRY_VOID(check_range("block status", offset, max_length));
    Extent extent{.offset = offset, .length = max_length, .kind = ExtentKind::Data, .depth = 0,
                  .has_host_offset = true, .host_offset = offset, .compressed = false};
    off_t data = ::lseek(m_file.fd(), off_t(offset), SEEK_DATA);
    if (data < 0) {
        if (errno != ENXIO) return extent;  // no SEEK_DATA support: everything is data
        extent.kind = ExtentKind::Zero;     // past the last data: a hole to the end
        return extent;
    }
    if (uint64_t(data) > offset) {
        extent.kind = ExtentKind::Zero;
        extent.length = std::min<uint64_t>(max_length, uint64_t(data) - offset);
        return extent;
    }
    off_t hole = ::lseek(m_file.fd(), off_t(offset), SEEK_HOLE);
    if (hole > off_t(offset)) extent.length = std::min<uint64_t>(max_length, uint64_t(hole) - offset);
    return extent;
}

}  // namespace corral::storage
