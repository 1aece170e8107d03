#pragma once

// Storage pools: named collections of volumes (virtual disks) that VMs attach. A pool driver
// (a host directory today; LVM-thin or Ceph RBD later) implements StoragePool.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "storage/copy.h"
#include "storage/image.h"

namespace corral::storage::pool {

/// Checks a pool or volume name against docs/api.md "Names" (1 to 63 characters, lowercase
/// letters, digits and '-', starting with a letter, not ending with '-'). `what` names the field
/// in the message ("volume name"). Fails with EINVAL and the rule.
Result<void> check_name(const char* what, const std::string& name);

struct PoolUsage {
    uint64_t capacity_bytes = 0;
    uint64_t allocation_bytes = 0;  ///< what the pool's volumes take on the host
    uint64_t available_bytes = 0;
};

/// What a volume's data stands on (a linked clone's base).
struct VolumeBacking {
    std::optional<std::string> volume;  ///< set when the backing is a volume of the same pool
    std::string path;  ///< the backing file, resolved (absolute when the pool path is)
    std::optional<ImageFormat> format;  ///< as recorded in the image; empty when it names none
};

struct VolumeInfo {
    std::string name;
    ImageFormat format = ImageFormat::Qcow2;
    uint64_t size_bytes = 0;        ///< virtual size, what the guest sees
    uint64_t allocation_bytes = 0;  ///< host bytes of this volume alone (not its backing)
    std::string path;               ///< for attaching to a VM; empty for pools without files
    std::optional<VolumeBacking> backing;
    /// Volumes of the same pool that are linked clones of this one.
    std::vector<std::string> clones;
};

enum class CloneMode {
    Linked,  ///< a qcow2 volume over the source: instant, the source must stay
    Full,    ///< an independent sparse copy in the source's format
};

/// A pool of volumes. Errors carry an errno the HTTP layer maps: ENOENT (no such volume, 404),
/// EEXIST (duplicate name, 409), EBUSY (in use, 409), EINVAL (bad input, 400). Methods are
/// safe to call from several threads.
class StoragePool {
public:
    virtual ~StoragePool() = default;

    virtual const std::string& name() const = 0;
    /// "dir", later "lvm-thin", "rbd".
    virtual std::string driver() const = 0;
    virtual Result<PoolUsage> usage() const = 0;

    /// Every volume, sorted by name.
    virtual Result<std::vector<VolumeInfo>> list_volumes() const = 0;
    virtual Result<VolumeInfo> volume_info(const std::string& name) const = 0;

    /// Creates an empty (sparse) volume of `size_bytes`.
    virtual Result<VolumeInfo> create_volume(const std::string& name, uint64_t size_bytes,
                                             ImageFormat format) = 0;
    /// Creates `name` from `source`: a linked clone (qcow2 over the source) or a full copy.
    /// `progress` may be empty.
    virtual Result<VolumeInfo> clone_volume(const std::string& source, const std::string& name,
                                            CloneMode mode, const Progress& progress) = 0;
    /// Creates `name` as a byte-for-byte copy of `source`'s file: a qcow2 keeps its internal
    /// snapshots (memory state included) and its backing file, so a VM cloned from a snapshot
    /// loads it from the copy and stands on the same base. The caller keeps writers off the
    /// source meanwhile (a running VM paused, its disks flushed).
    virtual Result<VolumeInfo> copy_volume_file(const std::string& source, const std::string& name) = 0;
    /// The file that holds a volume's content (a full copy into another pool reads it with
    /// import_volume there).
    virtual Result<std::string> volume_file(const std::string& name) const = 0;
    /// Grows the virtual size; shrinking fails with EINVAL.
    virtual Result<VolumeInfo> resize_volume(const std::string& name, uint64_t new_size) = 0;
    /// Deletes a volume; EBUSY while a linked clone in this pool stands on it. Callers check
    /// themselves that no VM uses it.
    virtual Result<void> delete_volume(const std::string& name) = 0;
    /// Copies an outside image file (raw or qcow2, detected from its content; a qcow2's backing
    /// chain is flattened) into the pool as a sparse qcow2 volume.
    virtual Result<VolumeInfo> import_volume(const std::string& name, const std::string& file,
                                             const Progress& progress) = 0;
    /// Writes a volume's content to a new file `dest_file` (EEXIST if it exists) in `format`.
    virtual Result<void> export_volume(const std::string& name, const std::string& dest_file,
                                       ImageFormat format, const Progress& progress) = 0;
};

}  // namespace corral::storage::pool
