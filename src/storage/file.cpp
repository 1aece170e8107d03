#include "storage/file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "base/private_file.h"

namespace corral::storage {

Result<File> File::open(const std::string& path, Access access) {
    int flags = (access == Access::ReadWrite ? O_RDWR : O_RDONLY) | O_CLOEXEC;
    int fd = ::open(path.c_str(), flags);
    if (fd < 0) return fail_errno(fmt::format("opening '{}'", path));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
        ::close(fd);
        return fail(fmt::format("'{}' is a directory, not an image file", path));
    }
    return File(UniqueFd(fd), path, access);
}

Result<File> File::create(const std::string& path, CreateMode mode) {
    // Guest disks are private to corrald (0600 whatever the umask), and a new image is never
    // written through a symlink someone planted at its name.
    if (mode == CreateMode::Exclusive) return File(TRY(create_exclusive(path, k_image_mode)), path, Access::ReadWrite);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, k_image_mode);
    if (fd < 0) return fail_errno(fmt::format("creating '{}'", path));
    return File(UniqueFd(fd), path, Access::ReadWrite);
}

Result<size_t> File::read_until_end(uint64_t offset, std::span<uint8_t> buffer) const {
    size_t done = 0;
    while (done < buffer.size()) {
        ssize_t n = ::pread(m_fd.get(), buffer.data() + done, buffer.size() - done, off_t(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno(fmt::format("reading {} bytes at offset {} of '{}'", buffer.size(), offset, m_path));
        }
        if (n == 0) break;  // end of file
        done += size_t(n);
    }
    return done;
}

Result<void> File::read_exact(uint64_t offset, std::span<uint8_t> buffer) const {
    size_t done = TRY(read_until_end(offset, buffer));
    if (done < buffer.size())
        return fail(fmt::format("'{}' ends before offset {} (reading {} bytes at offset {})", m_path,
                                offset + done, buffer.size(), offset));
    return {};
}

Result<void> File::read_zero_fill(uint64_t offset, std::span<uint8_t> buffer) const {
    size_t done = TRY(read_until_end(offset, buffer));
    std::memset(buffer.data() + done, 0, buffer.size() - done);
    return {};
}

Result<void> File::write_all(uint64_t offset, std::span<const uint8_t> data) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pwrite(m_fd.get(), data.data() + done, data.size() - done, off_t(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno(fmt::format("writing {} bytes at offset {} of '{}'", data.size(), offset, m_path));
        }
        done += size_t(n);
    }
    return {};
}

Result<void> File::sync() {
    if (::fdatasync(m_fd.get()) != 0) return fail_errno(fmt::format("fdatasync of '{}'", m_path));
    return {};
}

Result<void> File::punch_hole(uint64_t offset, uint64_t length) {
    if (length == 0) return {};
    if (::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(offset), off_t(length)) != 0) {
        if (errno == EOPNOTSUPP || errno == ENOSYS) return {};
        return fail_errno(fmt::format("punching a hole of {} bytes at offset {} of '{}'", length, offset, m_path));
    }
    return {};
}

Result<void> File::zero_range(uint64_t offset, uint64_t length) {
    if (length == 0) return {};
    if (::fallocate(m_fd.get(), FALLOC_FL_ZERO_RANGE, off_t(offset), off_t(length)) == 0) return {};
    if (::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off_t(offset), off_t(length)) == 0) {
        // Punching keeps the size; a zeroed range past the end must still extend the file.
        uint64_t current = TRY(size());
        if (offset + length > current) TRY_VOID(truncate(offset + length));
        return {};
    }
    std::vector<uint8_t> zeros(std::min<uint64_t>(length, 1 << 20));
    for (uint64_t done = 0; done < length;) {
        uint64_t n = std::min<uint64_t>(zeros.size(), length - done);
        TRY_VOID(write_all(offset + done, std::span(zeros.data(), n)));
        done += n;
    }
    return {};
}

Result<void> File::truncate(uint64_t size) {
    if (::ftruncate(m_fd.get(), off_t(size)) != 0)
        return fail_errno(fmt::format("resizing '{}' to {} bytes", m_path, size));
    return {};
}

Result<uint64_t> File::size() const {
    struct stat st {};
    if (::fstat(m_fd.get(), &st) != 0) return fail_errno(fmt::format("stat of '{}'", m_path));
    if (S_ISBLK(st.st_mode)) {
        off_t end = ::lseek(m_fd.get(), 0, SEEK_END);
        if (end < 0) return fail_errno(fmt::format("seeking to the end of '{}'", m_path));
        return uint64_t(end);
    }
    return uint64_t(st.st_size);
}

Result<uint64_t> File::allocated_bytes() const {
    struct stat st {};
    if (::fstat(m_fd.get(), &st) != 0) return fail_errno(fmt::format("stat of '{}'", m_path));
    return uint64_t(st.st_blocks) * 512;
}

}  // namespace corral::storage
