#pragma once

#include <filesystem>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::daemon {

/// Exclusive ownership of a state folder: one corrald per folder. Taken before corrald opens the
/// inventory, fails interrupted tasks or adopts VMs, so a second corrald started on the same folder
/// by mistake leaves everything the first one runs untouched. Released when destroyed (or when the
/// process ends: it is an flock on `corrald.lock`).
class StateLock {
public:
    /// Takes the lock on `state_dir/corrald.lock` (the folder must exist) and records our pid in it.
    /// Fails, naming the holder's pid, when another corrald holds it.
    static Result<StateLock> acquire(const std::filesystem::path& state_dir);

private:
    explicit StateLock(UniqueFd fd) : m_fd(std::move(fd)) {}
    UniqueFd m_fd;
};

}  // namespace corral::daemon
