#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>

namespace corral::daemon {

/// openat2() (glibc has no wrapper): `relative` resolved beneath `dirfd`, never above it; with
/// RESOLVE_BENEATH a symlink or ".." that would leave the folder fails with EXDEV. `resolve`
/// adds RESOLVE_* flags (RESOLVE_NO_SYMLINKS). The fd (O_CLOEXEC), or -1 with errno set.
int open_beneath(int dirfd, const std::filesystem::path& relative, int flags, uint64_t resolve, mode_t mode = 0);

}  // namespace corral::daemon
