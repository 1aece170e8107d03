#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "storage/backup/operations.h"
#include "storage/backup/seconds_since.h"
#include "storage/throttled_progress.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::storage::backup {

namespace {

bool all_zero(const uint8_t* p, size_t n) {
    return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

Result<const DiskIndex*> pick_disk(const BackupIndex& index, const std::string& name) {
    if (name.empty() && index.disks.size() == 1)
        return &index.disks.front();
    std::string names;
    for (const auto& disk : index.disks) {
        if (disk.name == name)
            return &disk;
        names += (names.empty() ? "" : ", ") + disk.name;
    }
    return fail(Error(name.empty() ? ErrorKind::Invalid : ErrorKind::NotFound,
                      fmt::format("disk '{}' is not in backup '{}' (allowed: {})", name, index.id, names)));
}

Result<uint64_t> write_disk(Repository& repo, const BackupIndex& index, const DiskIndex& disk,
                            BlockDevice& target, const Progress& progress) {
    auto* qcow2 = dynamic_cast<qcow2::Qcow2Image*>(&target);
    // Blocks of zeros inside a stored chunk are not written, at the target's allocation unit,
    // so the restored image stays as sparse as the original.
    const uint64_t unit = qcow2 ? qcow2->cluster_size() : 4096;
    ThrottledProgress reporter(progress, disk.virtual_size);
    uint64_t written = 0;
    if (reporter.report(0) == Proceed::Cancel)
        return fail("the restore was cancelled", ECANCELED);
    for (size_t i = 0; i < disk.chunks.size(); ++i) {
        const uint64_t offset = uint64_t(i) * index.chunk_size;
        const uint64_t length = std::min<uint64_t>(index.chunk_size, disk.virtual_size - offset);
        if (!disk.chunks[i].empty()) {
            auto data = TRY_CONTEXT(repo.read_chunk(disk.chunks[i]),
                                    fmt::format("backup '{}' disk '{}' offset {}: chunk {}", index.id,
                                                disk.name, offset, disk.chunks[i]));
            if (data.size() != length)
                return fail(fmt::format("backup '{}' disk '{}' offset {}: chunk {} holds {} bytes, "
                                        "the disk needs {}",
                                        index.id, disk.name, offset, disk.chunks[i], data.size(), length),
                            EINVAL);
            for (uint64_t at = 0; at < length;) {
                const uint64_t n = std::min<uint64_t>(length - at, unit - (offset + at) % unit);
                if (!all_zero(&data[at], n)) {
                    TRY_VOID(target.write_at(offset + at, std::span<const uint8_t>(&data[at], n)));
                    written += n;
                }
                at += n;
            }
        }
        const uint64_t done = offset + length;
        if (done != disk.virtual_size && reporter.report(done) == Proceed::Cancel)
            return fail("the restore was cancelled", ECANCELED);
    }
    TRY_VOID(target.flush());
    if (reporter.report(disk.virtual_size) == Proceed::Cancel)
        return fail("the restore was cancelled", ECANCELED);
    return written;
}

}  // namespace

Result<RestoreResult> restore_disk(Repository& repo, const RestoreRequest& request,
                                   const Progress& progress) {
    const auto start = std::chrono::steady_clock::now();
    if (request.destination.empty())
        return fail("destination is empty", EINVAL);
    RepositoryLock lock = TRY(repo.lock(LockMode::Shared));
    const auto shown = TRY(show_backup(repo, request.backup));
    const BackupIndex& index = shown.second;
    const DiskIndex* disk = TRY(pick_disk(index, request.disk));
    // An existing destination is refused, never overwritten (the create below is exclusive too,
    // for a file that appears meanwhile).
    struct stat st {};
    if (::lstat(request.destination.c_str(), &st) == 0)
        return fail(ErrorKind::Conflict,
                    fmt::format("destination '{}' exists already (a restore writes a new image)",
                                request.destination));
    ImageCreateOptions create;
    create.format = request.format;
    create.size = disk->virtual_size;
    TRY_CONTEXT(create_image(request.destination, create),
                fmt::format("destination '{}'", request.destination));
    auto restored = [&]() -> Result<uint64_t> {
        auto target = TRY(open_image(request.destination,
                                     ImageOpenOptions{.access = Access::ReadWrite, .format = request.format}));
        return write_disk(repo, index, *disk, *target, progress);
    }();
    if (!restored) {
        // Nothing half-restored stays behind under the name the user asked for.
        ::unlink(request.destination.c_str());
        return fail(restored.error());
    }
    return RestoreResult{.virtual_size = disk->virtual_size,
                         .written_bytes = *restored,
                         .seconds = seconds_since(start)};
}

}  // namespace corral::storage::backup
