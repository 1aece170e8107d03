#include "daemon/names.h"

#include "storage/pool/storage_pool.h"

namespace corral::daemon {

ApiResult<void> validate_name(const std::string& name, const std::string& what, const std::string& field) {
    // One rule for every name corrald hands out; the storage pools own it.
    if (auto checked = storage::pool::check_name(what.c_str(), name); !checked)
        return api_fail(400, checked.error().message(), field);
    return {};
}

}  // namespace corral::daemon
