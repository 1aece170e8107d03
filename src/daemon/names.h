#pragma once

#include <string>

#include "daemon/http/api_error.h"

namespace corral::daemon {

/// VM, pool, volume and image names: 1-63 characters of lowercase letters, digits and '-',
/// starting with a letter, not ending with '-' (they become file, socket and tap names).
/// `what` and `field` go into the message ("VM name", "name").
ApiResult<void> validate_name(const std::string& name, const std::string& what, const std::string& field);

/// 400 naming `field` for a VM name reserved for corrald's own VMs (the throwaway VMs of backup
/// boot checks, BackupService::k_boot_check_prefix), which corrald may delete at any time.
ApiResult<void> refuse_reserved_vm_name(const std::string& name, const std::string& field);

}  // namespace corral::daemon
