#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <unordered_map>

#include "storage/backup/operations.h"
#include "storage/backup/seconds_since.h"
#include "storage/throttled_progress.h"

namespace corral::storage::backup {

namespace {

/// strerror only for a failed system call (a missing chunk file); a domain error's errno only
/// classifies it.
std::string reason_of(const Error& error) {
    return error.kind() == ErrorKind::System ? error.describe() : error.message();
}

}  // namespace

std::string VerifyProblem::describe() const {
    if (disk.empty())
        return fmt::format("backup '{}': {}", backup, reason);
    return fmt::format("backup '{}' disk '{}' offset {}: chunk {}: {}", backup, disk, offset, chunk,
                       reason);
}

Result<VerifyResult> verify_backups(Repository& repo, const std::vector<std::string>& ids,
                                    const Progress& progress) {
    const auto start = std::chrono::steady_clock::now();
    RepositoryLock lock = TRY(repo.lock(LockMode::Shared));
    std::vector<BackupRecord> records;
    if (ids.empty()) {
        records = TRY(repo.catalogue().list(std::nullopt));
    } else {
        for (const auto& id : ids) {
            TRY_VOID(validate_backup_id(id));
            auto record = TRY(repo.catalogue().find(id));
            if (!record || record->state != "complete")
                return fail(ErrorKind::NotFound,
                            fmt::format("no backup '{}' in repository '{}'", id, repo.path()));
            records.push_back(std::move(*record));
        }
    }
    uint64_t total = 0;
    for (const auto& r : records)
        total += r.logical_bytes;
    ThrottledProgress reporter(progress, total);
    uint64_t done = 0;
    VerifyResult result;
    // A chunk shared by many backups is read once; its verdict (empty = good) applies to all.
    std::unordered_map<std::string, std::string> verdicts;
    for (const auto& record : records) {
        ++result.backups;
        std::vector<VerifyProblem> problems;
        auto index = repo.read_index(record.id);
        if (!index) {
            problems.push_back({.backup = record.id, .disk = {}, .offset = 0, .chunk = {},
                                .reason = reason_of(index.error())});
            done += record.logical_bytes;
            if (done != total && reporter.report(done) == Proceed::Cancel)
                return fail("the verify was cancelled", ECANCELED);
        } else {
            for (const auto& disk : index->disks) {
                for (size_t i = 0; i < disk.chunks.size(); ++i) {
                    const uint64_t offset = uint64_t(i) * index->chunk_size;
                    const uint64_t length = std::min<uint64_t>(index->chunk_size, disk.virtual_size - offset);
                    const std::string& name = disk.chunks[i];
                    if (!name.empty()) {
                        auto found = verdicts.find(name);
                        if (found == verdicts.end()) {
                            auto data = repo.read_chunk(name);
                            std::string verdict;
                            if (!data)
                                verdict = reason_of(data.error());
                            else if (data->size() != length)
                                verdict = fmt::format("holds {} bytes, the disk needs {} here",
                                                      data->size(), length);
                            if (data) {
                                ++result.chunks;
                                result.bytes += data->size();
                            }
                            found = verdicts.emplace(name, std::move(verdict)).first;
                        }
                        if (!found->second.empty())
                            problems.push_back({.backup = record.id, .disk = disk.name, .offset = offset,
                                                .chunk = name, .reason = found->second});
                    }
                    done += length;
                    if (done != total && reporter.report(done) == Proceed::Cancel)
                        return fail("the verify was cancelled", ECANCELED);
                }
            }
        }
        const bool ok = problems.empty();
        TRY_VOID(repo.catalogue().set_verified(record.id, ok, static_cast<int64_t>(::time(nullptr)),
                                               ok ? std::string() : problems.front().describe()));
        if (!ok) {
            result.bad_backups.push_back(record.id);
            result.problems.insert(result.problems.end(), problems.begin(), problems.end());
        }
    }
    if (reporter.report(total) == Proceed::Cancel)
        return fail("the verify was cancelled", ECANCELED);
    result.seconds = seconds_since(start);
    return result;
}

}  // namespace corral::storage::backup
