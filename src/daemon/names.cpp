#include "daemon/names.h"

#include <fmt/format.h>

#include "daemon/backup_service.h"
#include "storage/pool/storage_pool.h"

namespace corral::daemon {

ApiResult<void> validate_name(const std::string& name, const std::string& what, const std::string& field) {
    // One rule for every name corrald hands out; the storage pools own it.
    if (auto checked = storage::pool::check_name(what.c_str(), name); !checked)
        return api_fail(400, checked.error().message(), field);
    return {};
}

ApiResult<void> refuse_reserved_vm_name(const std::string& name, const std::string& field) {
    if (name.starts_with(BackupService::k_boot_check_prefix))
        return api_fail(400,
                        fmt::format("VM name '{}' is reserved: names starting with '{}' are corrald's throwaway VMs "
                                    "of backup boot checks",
                                    name, BackupService::k_boot_check_prefix),
                        field);
    return {};
}

}  // namespace corral::daemon
