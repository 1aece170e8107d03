#pragma once

#include <span>
#include <string>

#include "base/result.h"
#include "vmm/config/vm_config.h"

namespace corral::vmm {

/// Checks the flags given with --restore (`flags`, their values in `given`) against the
/// configuration a snapshot was taken with, and applies the ones that may change: --net's tap
/// or fd (a new process needs its own; the MAC must stay), --disk's paths (a revert may use
/// another file of the same size; the block device checks the size), --console, --on-reboot
/// and --shutdown-timeout. The error lists every mismatch ("--memory: the snapshot has
/// 512 MiB, 1024 MiB given").
Result<void> apply_restore_flags(VmConfig& snapshot, const VmConfig& given, std::span<const std::string> flags);

}  // namespace corral::vmm
