#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::storage {

enum class Access { ReadOnly, ReadWrite };
/// Exclusive: O_EXCL|O_NOFOLLOW (fails if anything, a symlink included, is there). Truncate
/// (for tools writing where the user said): O_TRUNC|O_NOFOLLOW.
enum class CreateMode { Exclusive, Truncate };

/// Mode of every image corral creates: guest data is readable by corrald's user only.
inline constexpr unsigned k_image_mode = 0600;

/// The synchronous I/O engine: one host file accessed with pread/pwrite/fdatasync/fallocate.
/// Formats (raw, qcow2) do all their host I/O through this class, so another engine (io_uring)
/// can replace it without touching format code.
class File {
public:
    File() = default;
    static Result<File> open(const std::string& path, Access access);
    static Result<File> create(const std::string& path, CreateMode mode);
    /// Takes an open descriptor (opened with `access`, by whoever could open the file);
    /// `name` stands for its path in messages.
    static File adopt(UniqueFd fd, std::string name, Access access) {
        return File(std::move(fd), std::move(name), access);
    }

    const std::string& path() const { return m_path; }
    bool writable() const { return m_access == Access::ReadWrite; }

    /// Reads exactly buffer.size() bytes; fails (naming the range) if the file ends first.
    Result<void> read_exact(uint64_t offset, std::span<uint8_t> buffer) const;
    /// Reads up to buffer.size() bytes and zero-fills whatever lies past the end of the file.
    Result<void> read_zero_fill(uint64_t offset, std::span<uint8_t> buffer) const;
    Result<void> write_all(uint64_t offset, std::span<const uint8_t> data);
    /// fdatasync: everything written before is durable when this returns.
    Result<void> sync();
    /// Deallocates a range, keeping the size; reads of it return zeros. No-op where unsupported.
    Result<void> punch_hole(uint64_t offset, uint64_t length);
    /// Makes a range read as zeros (ZERO_RANGE, else punch hole, else writes zeros).
    Result<void> zero_range(uint64_t offset, uint64_t length);
    Result<void> truncate(uint64_t size);
    Result<uint64_t> size() const;
    /// Bytes the host file system really allocated (st_blocks * 512).
    Result<uint64_t> allocated_bytes() const;
    int fd() const { return m_fd.get(); }

private:
    /// Reads until `buffer` is full or the file ends; returns how many bytes were read.
    Result<size_t> read_until_end(uint64_t offset, std::span<uint8_t> buffer) const;
    File(UniqueFd fd, std::string path, Access access)
        : m_fd(std::move(fd)), m_path(std::move(path)), m_access(access) {}

    UniqueFd m_fd;
    std::string m_path;
    Access m_access = Access::ReadOnly;
};

}  // namespace corral::storage
