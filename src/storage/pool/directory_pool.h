#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "storage/pool/storage_pool.h"

namespace corral::storage::pool {

enum class MissingFolder { Fail, Create };

/// A pool that is a host folder: volume `n` is the file `<folder>/n.qcow2` or `<folder>/n.raw`.
/// Linked clones name their backing file relative to the folder (with its format), so the folder
/// can be moved or copied as a whole. New volumes are written under a hidden temporary name and
/// renamed into place at the end, so a failure or a duplicate name leaves nothing behind.
class DirectoryPool final : public StoragePool {
public:
    /// Opens the pool `name` over `folder` (made absolute), creating the folder if asked.
    static Result<std::unique_ptr<DirectoryPool>> open(const std::string& name,
                                                       const std::string& folder,
                                                       MissingFolder missing);

    const std::string& name() const override { return m_name; }
    std::string driver() const override { return "dir"; }
    /// The absolute path of the pool folder.
    const std::string& path() const { return m_path; }
    /// What makes this folder this folder, wherever it is mounted: a random id kept in the file
    /// `.corral-pool-id` inside it (written on first ask; volume names never start with '.').
    /// Two hosts whose pools have the same identity see the same disks (a live migration moves
    /// a VM between them without copying its disks).
    Result<std::string> identity() const;
    Result<PoolUsage> usage() const override;

    Result<std::vector<VolumeInfo>> list_volumes() const override;
    Result<VolumeInfo> volume_info(const std::string& name) const override;
    /// The volumes of this pool that are linked clones of `name`, sorted.
    Result<std::vector<std::string>> clones_of(const std::string& name) const;

    Result<VolumeInfo> create_volume(const std::string& name, uint64_t size_bytes,
                                     ImageFormat format) override;
    Result<VolumeInfo> copy_volume_file(const std::string& source, const std::string& name) override;
    Result<VolumeInfo> clone_volume(const std::string& source, const std::string& name,
                                    CloneMode mode, const Progress& progress) override;
    Result<std::string> volume_file(const std::string& name) const override;
    Result<VolumeInfo> resize_volume(const std::string& name, uint64_t new_size) override;
    Result<void> delete_volume(const std::string& name) override;
    Result<VolumeInfo> import_volume(const std::string& name, const std::string& file,
                                     const Progress& progress) override;
    Result<void> export_volume(const std::string& name, const std::string& dest_file,
                               ImageFormat format, const Progress& progress) override;

private:
    class TempFile;
    struct Located {
        std::string path;
        ImageFormat format;
    };

    DirectoryPool(std::string name, std::string path)
        : m_name(std::move(name)), m_path(std::move(path)) {}

    std::string volume_path(const std::string& name, ImageFormat format) const;
    /// The volume's file; ENOENT when there is none.
    Result<Located> locate(const std::string& name) const;
    /// Checks the name and that no volume has it yet (EINVAL, EEXIST).
    Result<void> check_new_name(const std::string& name) const;
    Result<VolumeInfo> describe(const std::string& name, const Located& where) const;
    /// Every volume without `clones` filled in.
    Result<std::vector<VolumeInfo>> scan() const;
    /// Renames a finished temporary file to the volume's name; m_mutex must be held.
    Result<void> commit_locked(TempFile& temp, const std::string& name, ImageFormat format);

    std::string m_name;
    std::string m_path;
    /// Serializes changes to the set of volumes (the final rename, linked clones, deletes), so a
    /// delete cannot miss a linked clone being created. Long copies run outside it.
    std::mutex m_mutex;
};

}  // namespace corral::storage::pool
