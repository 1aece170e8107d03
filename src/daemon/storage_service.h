#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "base/result.h"
#include "daemon/inventory/inventory.h"
#include "storage/pool/storage_pool.h"

namespace corral::daemon {

/// The storage pools corrald knows (records in the inventory, live pool objects here). The
/// `default` directory pool under <state-dir>/pools/default is created on first start.
class StorageService {
public:
    StorageService(inventory::Inventory& inventory, std::filesystem::path state_dir)
        : m_inventory(inventory), m_state_dir(std::move(state_dir)) {}

    /// Makes sure the default pool exists (record and folder).
    Result<void> ensure_default_pool();
    /// The live pool named `name` (ENOENT naming it when there is none).
    Result<storage::pool::StoragePool*> pool(const std::string& name);
    /// Registers a new directory pool over `path` (created if missing).
    Result<inventory::PoolRecord> create_pool(const std::string& name, const std::string& driver,
                                              const std::string& path);
    /// EBUSY while the pool has volumes or images.
    Result<void> delete_pool(const std::string& name);

    static constexpr const char* k_default_pool = "default";

private:
    inventory::Inventory& m_inventory;
    std::filesystem::path m_state_dir;
    std::mutex m_mutex;  // guards m_pools
    std::map<std::string, std::unique_ptr<storage::pool::StoragePool>> m_pools;
};

}  // namespace corral::daemon
