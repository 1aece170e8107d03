#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <unordered_set>

#include "base/private_file.h"
#include "storage/backup/operations.h"
#include "storage/backup/seconds_since.h"
#include "storage/throttled_progress.h"

namespace corral::storage::backup {

namespace {

bool all_zero(const uint8_t* p, size_t n) {
    return n == 0 || (p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0);
}

Result<void> validate(const BackupRequest& request) {
    TRY_VOID(validate_name("vm", request.vm));
    if (request.disks.empty())
        return fail("disks is empty (a backup needs at least one disk)", EINVAL);
    std::unordered_set<std::string> names;
    for (const auto& disk : request.disks) {
        TRY_VOID(validate_name("disk name", disk.name));
        if (!names.insert(disk.name).second)
            return fail(fmt::format("disk name '{}' is given twice", disk.name), EINVAL);
    }
    auto config = nlohmann::json::parse(request.config_json, nullptr, false);
    if (config.is_discarded() || !config.is_object())
        return fail("config_json is not a JSON object", EINVAL);
    return {};
}

}  // namespace

std::string make_backup_id(const std::string& vm, int64_t created) {
    std::tm tm{};
    const time_t t = static_cast<time_t>(created);
    gmtime_r(&t, &tm);
    // The random suffix keeps two backups of one VM in the same second apart.
    return fmt::format("{}-{:%Y%m%dT%H%M%SZ}-{}", vm, tm, random_hex(3));
}

namespace {

/// Reads one chunk's range, skipping what the image maps as unallocated or zero. Returns false
/// (and reads nothing more) when the range holds no data at all.
Result<bool> read_chunk_range(BlockDevice& device, uint64_t offset, std::span<uint8_t> buffer,
                              uint64_t& read_bytes) {
    bool any_data = false;
    const uint64_t end = offset + buffer.size();
    for (uint64_t pos = offset; pos < end;) {
        Extent extent = TRY(device.block_status(pos, end - pos));
        const uint64_t n = std::clamp<uint64_t>(extent.length, 1, end - pos);
        if (extent.kind == ExtentKind::Data) {
            if (!any_data) {
                std::memset(buffer.data(), 0, buffer.size());
                any_data = true;
            }
            TRY_VOID(device.read_at(pos, buffer.subspan(pos - offset, n)));
            read_bytes += n;
        }
        pos += n;
    }
    return any_data;
}

/// Overwrites, in `buffer` (the chunk at `offset`, holding the base backup's bytes), the granules
/// `dirty` marks with the image's bytes there (zeros where it maps no data): only those are read.
Result<void> read_dirty_ranges(BlockDevice& device, uint64_t offset, std::span<uint8_t> buffer, const DirtyMap& dirty,
                               uint64_t& read_bytes) {
    const uint64_t end = offset + buffer.size();
    const uint64_t g = dirty.granularity;
    for (uint64_t pos = offset; pos < end;) {
        uint64_t run_end = std::min(end, (pos / g + 1) * g);
        if (!dirty.bit(pos / g)) {
            pos = run_end;
            continue;
        }
        while (run_end < end && dirty.bit(run_end / g))
            run_end = std::min(end, run_end + g);
        for (uint64_t at = pos; at < run_end;) {
            Extent extent = TRY(device.block_status(at, run_end - at));
            const uint64_t n = std::clamp<uint64_t>(extent.length, 1, run_end - at);
            auto part = buffer.subspan(at - offset, n);
            if (extent.kind == ExtentKind::Data) {
                TRY_VOID(device.read_at(at, part));
                read_bytes += n;
            } else {
                std::memset(part.data(), 0, n);
            }
            at += n;
        }
        pos = run_end;
    }
    return {};
}

/// Fills `buffer` with the base backup's bytes of the chunk named `name` (zeros for ""); false
/// when that chunk cannot be read back (damaged in the store: the caller reads the disk instead).
bool load_base_chunk(Repository& repo, const std::string& name, std::span<uint8_t> buffer) {
    if (name.empty()) {
        std::memset(buffer.data(), 0, buffer.size());
        return true;
    }
    auto data = repo.read_chunk(name);
    if (!data || data->size() != buffer.size())
        return false;
    std::memcpy(buffer.data(), data->data(), buffer.size());
    return true;
}

/// Why `disk` (of `size` bytes) is read in full, or "" when its incremental plan holds: the plan
/// was made before the repository was locked, so its base may have been deleted since.
Result<std::string> full_read_reason(Repository& repo, const DiskSource& disk, uint64_t size) {
    if (!disk.incremental)
        return disk.full_reason.empty() ? std::string("no bitmap") : disk.full_reason;
    const auto& plan = *disk.incremental;
    const uint64_t chunks = (size + repo.chunk_size() - 1) / repo.chunk_size();
    if (plan.dirty.disk_size != size || plan.base_chunks.size() != chunks)
        return fmt::format("the disk's size changed since backup {}", plan.base);
    auto base = TRY(repo.catalogue().find(plan.base));
    if (!base || base->state != "complete")
        return fmt::format("previous backup {} was deleted as this one started", plan.base);
    return std::string();
}

}  // namespace

Result<BackupResult> create_backup(Repository& repo, const BackupRequest& request,
                                   const Progress& progress) {
    const auto start = std::chrono::steady_clock::now();
    TRY_VOID(validate(request));
    RepositoryLock lock = TRY(repo.lock(LockMode::Shared));
    // Every disk opens before anything is recorded: a missing image fails with nothing written.
    std::vector<std::unique_ptr<BlockDevice>> devices;
    uint64_t total = 0;
    for (const auto& disk : request.disks) {
        ImageOpenOptions options{.access = Access::ReadOnly, .format = disk.format, .snapshot = disk.snapshot};
        devices.push_back(TRY_CONTEXT(open_image(disk.path, options),
                                      fmt::format("disk '{}'", disk.name)));
        total += devices.back()->size();
    }

    BackupResult result;
    std::vector<const DiskSource::Incremental*> plans(devices.size(), nullptr);
    for (size_t d = 0; d < devices.size(); ++d) {
        const auto& disk = request.disks[d];
        const std::string why = TRY(full_read_reason(repo, disk, devices[d]->size()));
        if (why.empty()) {
            plans[d] = &*disk.incremental;
            result.read_mode = "incremental";
            result.base = disk.incremental->base;
        } else {
            result.full_reason += fmt::format("{}disk {}: {}", result.full_reason.empty() ? "" : "; ", disk.name, why);
        }
    }
    const int64_t created = request.created ? request.created : static_cast<int64_t>(::time(nullptr));
    if (!request.id.empty())
        TRY_VOID(validate_backup_id(request.id));
    result.id = request.id.empty() ? make_backup_id(request.vm, created) : request.id;
    TRY_VOID(repo.catalogue().begin_backup(result.id, request.vm, created));

    auto run = [&]() -> Result<void> {
        BackupIndex index{.id = result.id,
                          .vm = request.vm,
                          .created = created,
                          .chunk_size = repo.chunk_size(),
                          .config_json = request.config_json,
                          .disks = {}};
        std::unordered_set<std::string> referenced;
        std::vector<uint8_t> buffer(repo.chunk_size());
        ThrottledProgress reporter(progress, total);
        uint64_t done = 0;
        if (reporter.report(0) == Proceed::Cancel)
            return fail("the backup was cancelled", ECANCELED);
        for (size_t d = 0; d < devices.size(); ++d) {
            BlockDevice& device = *devices[d];
            DiskIndex disk{.name = request.disks[d].name, .virtual_size = device.size(), .chunks = {}};
            const DiskSource::Incremental* plan = plans[d];
            for (uint64_t offset = 0; offset < device.size(); offset += repo.chunk_size()) {
                const uint64_t length = std::min<uint64_t>(repo.chunk_size(), device.size() - offset);
                if (plan && !plan->dirty.any(offset, length)) {
                    // Unchanged since the base backup: its chunk, unread (the base is complete and
                    // gc waits for our lock, so the chunk is in the store).
                    const std::string& name = plan->base_chunks[offset / repo.chunk_size()];
                    if (name.empty()) {
                        ++result.zero_chunks;
                    } else {
                        ++result.chunks;
                        ++result.reused_chunks;
                        referenced.insert(name);
                    }
                    disk.chunks.push_back(name);
                    done += length;
                    if (done != total && reporter.report(done) == Proceed::Cancel)
                        return fail("the backup was cancelled", ECANCELED);
                    continue;
                }
                auto data = std::span(buffer).subspan(0, length);
                const auto where = [&] { return fmt::format("disk '{}' at offset {}", disk.name, offset); };
                bool any = true;
                if (plan && load_base_chunk(repo, plan->base_chunks[offset / repo.chunk_size()], data))
                    // A changed chunk: the base's bytes with the dirty granules read over them.
                    TRY_CONTEXT(read_dirty_ranges(device, offset, data, plan->dirty, result.read_bytes), where());
                else
                    any = TRY_CONTEXT(read_chunk_range(device, offset, data, result.read_bytes), where());
                if (!any || all_zero(data.data(), data.size())) {
                    // Zero chunks are a marker in the index, never stored.
                    disk.chunks.emplace_back();
                    ++result.zero_chunks;
                } else {
                    std::string name = repo.chunk_name(data);
                    ++result.chunks;
                    if (referenced.insert(name).second) {
                        const uint64_t written = TRY(repo.put_chunk(name, data));
                        if (written) {
                            ++result.new_chunks;
                            result.new_bytes += written;
                        }
                    }
                    disk.chunks.push_back(std::move(name));
                }
                done += length;
                if (done != total && reporter.report(done) == Proceed::Cancel)
                    return fail("the backup was cancelled", ECANCELED);
            }
            result.logical_bytes += device.size();
            index.disks.push_back(std::move(disk));
        }
        // Order is the consistency: chunks durable, then the index, then "complete".
        TRY_VOID(repo.sync_chunks());
        TRY_VOID(repo.write_index(index));
        if (reporter.report(total) == Proceed::Cancel)
            return fail("the backup was cancelled", ECANCELED);
        return repo.catalogue().complete_backup(result.id, referenced,
                                                BackupTotals{.disks = index.disks.size(),
                                                             .logical_bytes = result.logical_bytes,
                                                             .new_chunks = result.new_chunks,
                                                             .new_bytes = result.new_bytes,
                                                             .read_mode = result.read_mode,
                                                             .read_bytes = result.read_bytes,
                                                             .base = result.base,
                                                             .full_reason = result.full_reason});
    };
    auto ran = run();
    if (!ran) {
        // The chunks stay until gc (another backup may already share them); the record and
        // index go now so nothing lists a backup that did not finish.
        ignore_error(repo.catalogue().remove(result.id), "gc removes a stale record too");
        ignore_error(repo.remove_index(result.id), "gc removes a stale index too");
        return fail(ran.error());
    }
    result.seconds = seconds_since(start);
    return result;
}

Result<std::vector<BackupRecord>> list_backups(Repository& repo, const std::optional<std::string>& vm) {
    return repo.catalogue().list(vm);
}

Result<std::pair<BackupRecord, BackupIndex>> show_backup(Repository& repo, const std::string& id) {
    TRY_VOID(validate_backup_id(id));
    auto record = TRY(repo.catalogue().find(id));
    if (!record || record->state != "complete")
        return fail(ErrorKind::NotFound, fmt::format("no backup '{}' in repository '{}'", id, repo.path()));
    BackupIndex index = TRY(repo.read_index(id));
    return std::pair{std::move(*record), std::move(index)};
}

Result<void> delete_backup(Repository& repo, const std::string& id) {
    TRY_VOID(validate_backup_id(id));
    RepositoryLock lock = TRY(repo.lock(LockMode::Shared));
    auto record = TRY(repo.catalogue().find(id));
    if (!record || record->state != "complete")
        return fail(ErrorKind::NotFound, fmt::format("no backup '{}' in repository '{}'", id, repo.path()));
    // Catalogue first: once it is gone nothing lists the backup; a leftover index is gc's.
    TRY_VOID(repo.catalogue().remove(id));
    return repo.remove_index(id);
}

}  // namespace corral::storage::backup
