#pragma once

#include "base/result.h"

namespace corral::inventory {

class Connection;

/// The schema version this build writes; PRAGMA user_version holds a database's version.
inline constexpr int k_schema_version = 13;

/// The database's schema version (0 for a new, empty file).
Result<int> schema_version(Connection& db);

/// Brings the database up to `target` (at most k_schema_version), one step per version, each in
/// its own transaction together with its user_version bump, so a crash leaves a whole version.
/// Fails, changing nothing, if the database is newer than this build knows.
/// Safe against another process migrating the same file at the same time.
Result<void> migrate(Connection& db, int target = k_schema_version);

}  // namespace corral::inventory
