#include <unistd.h>

#include <fmt/format.h>

#include <set>

#include "storage/backup/operations.h"

namespace corral::storage::backup {

Result<GcResult> collect_garbage(Repository& repo) {
    // Exclusive: no backup runs meanwhile, so a chunk written but not yet referenced (a backup
    // between its chunks and its catalogue commit) is never taken for garbage, and a record in
    // state "writing" belongs to a process that died.
    RepositoryLock lock = TRY(repo.lock(LockMode::Exclusive));
    GcResult result;
    Catalogue& catalogue = repo.catalogue();
    const auto incomplete = TRY(catalogue.incomplete());
    for (const auto& id : incomplete) {
        TRY_VOID(catalogue.remove(id));
        ignore_error(repo.remove_index(id), "an orphaned index is removed below in any case");
        ++result.removed_incomplete;
    }
    std::vector<std::string> temporaries;
    std::set<std::string> listed;
    const auto records = TRY(catalogue.list(std::nullopt));
    for (const auto& record : records)
        listed.insert(record.id);
    const auto index_ids = TRY(repo.index_ids(&temporaries));
    for (const auto& id : index_ids)
        if (!listed.count(id))
            TRY_VOID(repo.remove_index(id));
    const auto referenced = TRY(catalogue.referenced_chunks());
    const auto stored = TRY(repo.stored_chunks(&temporaries));
    for (const auto& chunk : stored) {
        if (referenced.count(chunk.name)) {
            ++result.kept_chunks;
            result.kept_bytes += chunk.bytes;
            continue;
        }
        TRY_VOID(repo.remove_chunk(chunk.name));
        ++result.removed_chunks;
        result.removed_bytes += chunk.bytes;
    }
    for (const auto& path : temporaries) {
        if (::unlink(path.c_str()) != 0 && errno != ENOENT)
            return fail_errno(fmt::format("removing '{}'", path));
        ++result.removed_temporaries;
    }
    return result;
}

}  // namespace corral::storage::backup
