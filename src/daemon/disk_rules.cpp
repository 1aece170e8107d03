#include "daemon/disk_rules.h"

#include <fmt/format.h>

namespace corral::daemon {

std::string DiskConflict::field() const { return fmt::format("disks[{}].volume", index); }

Result<std::optional<DiskConflict>> find_disk_conflict(inventory::Inventory& inventory, StorageService& storage,
                                                       const inventory::VmRecord& vm) {
    for (size_t i = 0; i < vm.disks.size(); ++i) {
        const auto& disk = vm.disks[i];
        std::string volume = fmt::format("{}/{}", disk.pool, disk.volume);
        auto* pool = TRY(storage.pool(disk.pool));
        auto info = TRY_CONTEXT(pool->volume_info(disk.volume), fmt::format("disk {}", volume));
        if (!disk.readonly && !info.clones.empty())
            return DiskConflict{i, fmt::format("volume {} has linked clones standing on it ({}{}): attaching it writable "
                                               "would change every clone; attach it readonly, or make a full clone "
                                               "(POST /api/v1/volumes with \"linked\": false) and attach that",
                                               volume, info.clones.front(), info.clones.size() > 1 ? ", ..." : "")};
        // The same VM naming a volume twice counts as two attachments.
        for (size_t j = 0; j < vm.disks.size(); ++j) {
            const auto& other = vm.disks[j];
            if (j == i || other.pool != disk.pool || other.volume != disk.volume) continue;
            if (!disk.readonly || !other.readonly)
                return DiskConflict{i, fmt::format("volume {} is also disks[{}] of this VM; a volume written by one "
                                                   "attachment is attached nowhere else",
                                                   volume, j)};
        }
        for (const auto& user : TRY(inventory.vms_using_volume(disk.pool, disk.volume))) {
            if (user == vm.name) continue;
            auto other_vm = inventory.get_vm(user);
            if (!other_vm) continue;  // deleted meanwhile
            for (const auto& other : other_vm->disks) {
                if (other.pool != disk.pool || other.volume != disk.volume) continue;
                if (!other.readonly)
                    return DiskConflict{i, fmt::format("volume {} is attached writable to VM {}: nothing else may "
                                                       "attach it, not even readonly (its data changes under the "
                                                       "reader); detach it there first, or attach a full clone",
                                                       volume, user)};
                if (!disk.readonly)
                    return DiskConflict{i, fmt::format("volume {} is attached to VM {}: it may be attached writable "
                                                       "only where nothing else attaches it; attach it readonly, or "
                                                       "attach a full clone",
                                                       volume, user)};
            }
        }
    }
    return std::nullopt;
}

ApiResult<void> refuse_disk_conflict(inventory::Inventory& inventory, StorageService& storage,
                                     const inventory::VmRecord& vm) {
    if (auto conflict = TRY(api(find_disk_conflict(inventory, storage, vm))))
        return api_fail(409, conflict->message, conflict->field());
    return {};
}

}  // namespace corral::daemon
