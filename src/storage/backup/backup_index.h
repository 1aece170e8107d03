#pragma once

// What one backup holds: the VM's configuration and, per disk, the list of its chunks.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace corral::storage::backup {

/// One disk of a backup: chunk i covers bytes [i * chunk_size, min((i + 1) * chunk_size,
/// virtual_size)). An empty name marks a chunk that reads as zeros (not stored).
struct DiskIndex {
    std::string name{};
    uint64_t virtual_size = 0;
    std::vector<std::string> chunks{};
};

/// The index of one backup; written (encoded like a chunk) as the last file of a backup.
struct BackupIndex {
    std::string id{};
    std::string vm{};
    int64_t created = 0;           ///< seconds since the epoch (UTC)
    uint32_t chunk_size = 0;
    std::string config_json = "{}";  ///< the VM's configuration, as the caller gave it
    std::vector<DiskIndex> disks{};
};

std::string encode_index_json(const BackupIndex& index);
/// Parses and validates an index (chunk counts match the sizes, names are 64 hex digits).
Result<BackupIndex> decode_index_json(std::string_view text);

/// True for a 64-digit lowercase hex string (a chunk name).
bool is_chunk_name(std::string_view name);

}  // namespace corral::storage::backup
