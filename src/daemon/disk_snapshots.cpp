#include "daemon/disk_snapshots.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "storage/image.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::daemon {
namespace fs = std::filesystem;

namespace {

/// The qcow2 image at `path` opened read-write (its backing chain read-only), kept with the
/// device that owns it.
struct OpenQcow2 {
    std::unique_ptr<storage::BlockDevice> device;
    storage::qcow2::Qcow2Image* image = nullptr;
};

Result<OpenQcow2> open_qcow2(const fs::path& path, storage::Access access) {
    OpenQcow2 opened;
    opened.device = TRY(storage::open_image(path.string(), storage::ImageOpenOptions{.access = access, .format = std::nullopt}));
    opened.image = dynamic_cast<storage::qcow2::Qcow2Image*>(opened.device.get());
    if (!opened.image)
        return fail(fmt::format("{} is {}: snapshots need qcow2 volumes", path.string(), opened.device->format_name()),
                    EINVAL);
    return opened;
}

bool has_snapshot(const storage::qcow2::Qcow2Image& image, const std::string& tag) {
    for (const auto& snapshot : image.snapshots())
        if (snapshot.name == tag) return true;
    return false;
}

}  // namespace

Result<void> create_disk_snapshot(const fs::path& path, const std::string& tag) {
    auto opened = TRY(open_qcow2(path, storage::Access::ReadWrite));
    if (has_snapshot(*opened.image, tag))
        return fail(fmt::format("{} already has a snapshot named {}", path.string(), tag), EEXIST);
    TRY_VOID(opened.image->create_snapshot(tag));
    return opened.image->flush();
}

Result<void> revert_disk_snapshot(const fs::path& path, const std::string& tag) {
    auto opened = TRY(open_qcow2(path, storage::Access::ReadWrite));
    if (!has_snapshot(*opened.image, tag))
        return fail(fmt::format("{} has no snapshot named {}", path.string(), tag), ENOENT);
    TRY_VOID(opened.image->revert_snapshot(tag));
    return opened.image->flush();
}

Result<void> delete_disk_snapshot(const fs::path& path, const std::string& tag) {
    auto opened = TRY(open_qcow2(path, storage::Access::ReadWrite));
    if (!has_snapshot(*opened.image, tag)) return {};
    TRY_VOID(opened.image->delete_snapshot(tag));
    return opened.image->flush();
}

Result<uint64_t> disk_snapshot_state_bytes(const fs::path& path, const std::string& tag) {
    auto opened = TRY(open_qcow2(path, storage::Access::ReadOnly));
    for (const auto& snapshot : opened.image->snapshots())
        if (snapshot.name == tag) return snapshot.vm_state_size;
    return 0;
}

Result<void> copy_file_sparse(const fs::path& from, const fs::path& to,
                              const std::function<void(uint64_t, uint64_t)>& progress) {
    UniqueFd source(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
    if (!source.valid()) return fail_errno(fmt::format("cannot open {}", from.string()));
    struct stat info {};
    if (::fstat(source.get(), &info) != 0) return fail_errno(fmt::format("cannot stat {}", from.string()));
    const uint64_t size = static_cast<uint64_t>(info.st_size);
    const fs::path temporary = to.string() + ".corral-tmp";
    UniqueFd target(::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, info.st_mode & 07777));
    if (!target.valid()) return fail_errno(fmt::format("cannot create {}", temporary.string()));
    auto copied = [&]() -> Result<void> {
        if (::ftruncate(target.get(), static_cast<off_t>(size)) != 0)
            return fail_errno(fmt::format("cannot size {}", temporary.string()));
        // Only the data extents (SEEK_DATA/SEEK_HOLE), and of those only the blocks that are not
        // zero: a 20 GiB volume with 300 MiB written copies 300 MiB and stays that small.
        constexpr size_t k_chunk = 1 << 20;
        std::vector<char> buffer(k_chunk);
        const std::vector<char> zeros(k_chunk, 0);
        off_t offset = 0;
        while (static_cast<uint64_t>(offset) < size) {
            off_t data = ::lseek(source.get(), offset, SEEK_DATA);
            if (data < 0) break;  // ENXIO: only a hole is left
            off_t hole = ::lseek(source.get(), data, SEEK_HOLE);
            if (hole < 0) hole = static_cast<off_t>(size);
            for (off_t at = data; at < hole;) {
                size_t want = static_cast<size_t>(std::min<off_t>(hole - at, static_cast<off_t>(k_chunk)));
                ssize_t got = ::pread(source.get(), buffer.data(), want, at);
                if (got < 0 && errno == EINTR) continue;
                if (got < 0) return fail_errno(fmt::format("cannot read {}", from.string()));
                if (got == 0) break;
                if (std::memcmp(buffer.data(), zeros.data(), static_cast<size_t>(got)) != 0) {
                    for (ssize_t written = 0; written < got;) {
                        ssize_t n = ::pwrite(target.get(), buffer.data() + written, static_cast<size_t>(got - written),
                                             at + written);
                        if (n < 0 && errno == EINTR) continue;
                        if (n < 0) return fail_errno(fmt::format("cannot write {}", temporary.string()));
                        written += n;
                    }
                }
                at += got;
                if (progress) progress(static_cast<uint64_t>(at), size);
            }
            offset = hole;
        }
        if (::fsync(target.get()) != 0) return fail_errno(fmt::format("cannot sync {}", temporary.string()));
        if (::rename(temporary.c_str(), to.c_str()) != 0)
            return fail_errno(fmt::format("cannot rename {} to {}", temporary.string(), to.string()));
        return {};
    }();
    if (!copied) ::unlink(temporary.c_str());
    return copied;
}

uint64_t allocated_bytes(const fs::path& dir) {
    uint64_t total = 0;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        struct stat info {};
        if (::lstat(it->path().c_str(), &info) == 0 && S_ISREG(info.st_mode))
            total += static_cast<uint64_t>(info.st_blocks) * 512;
    }
    return total;
}

}  // namespace corral::daemon
