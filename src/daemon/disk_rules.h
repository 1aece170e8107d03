#pragma once

#include <optional>
#include <string>

#include "base/result.h"
#include "daemon/http/api_error.h"
#include "daemon/inventory/inventory.h"
#include "daemon/storage_service.h"

namespace corral::daemon {

/// A disk of a VM that may not be attached as it asks: its index in VmRecord::disks and why.
struct DiskConflict {
    size_t index = 0;
    std::string message;
    /// "disks[i].volume", the field the API names.
    std::string field() const;
};

/// Checks the sharing rules for `vm`'s disks against every other VM's (docs/api.md "Disks"),
/// because one writer corrupts what others read:
/// - a volume that linked clones stand on is never attached writable (writes would reach every
///   clone);
/// - a volume attached writable is attached nowhere else, not even read-only (another VM, or
///   another disk of the same VM);
/// - a read-only attach of a volume another VM attaches writable is refused.
/// The first disk that breaks one, or nullopt. Checked when a VM is defined and again when it
/// starts, since volumes and VMs change in between.
Result<std::optional<DiskConflict>> find_disk_conflict(inventory::Inventory& inventory, StorageService& storage,
                                                       const inventory::VmRecord& vm);

/// find_disk_conflict as the API answers it: a 409 naming disks[i].volume (the VM manager checks
/// the same rules again, under its lock).
ApiResult<void> refuse_disk_conflict(inventory::Inventory& inventory, StorageService& storage,
                                     const inventory::VmRecord& vm);

}  // namespace corral::daemon
