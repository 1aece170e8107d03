#pragma once

// Internal to corral_backup: how long an operation took, for its result.

#include <chrono>

namespace corral::storage::backup {

inline double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace corral::storage::backup
