#include "daemon/storage_service.h"

#include <fmt/format.h>

#include "storage/pool/directory_pool.h"

namespace corral::daemon {

using storage::pool::DirectoryPool;
using storage::pool::MissingFolder;

Result<void> StorageService::ensure_default_pool() {
    if (m_inventory.get_pool(k_default_pool)) return {};
    auto path = m_state_dir / "pools" / k_default_pool;
    TRY(create_pool(k_default_pool, "dir", path.string()));
    return {};
}

Result<storage::pool::StoragePool*> StorageService::pool(const std::string& name) {
    std::lock_guard lock(m_mutex);
    if (auto it = m_pools.find(name); it != m_pools.end()) return it->second.get();
    auto record = m_inventory.get_pool(name);
    if (!record) return fail(fmt::format("no storage pool named {}", name), ENOENT);
    auto opened = TRY_CONTEXT(DirectoryPool::open(record->name, record->path, MissingFolder::Create),
                              fmt::format("opening pool {}", name));
    auto* raw = opened.get();
    m_pools.emplace(name, std::move(opened));
    return raw;
}

Result<inventory::PoolRecord> StorageService::create_pool(const std::string& name, const std::string& driver,
                                                          const std::string& path) {
    if (driver != "dir")
        return fail(fmt::format("unknown pool driver '{}': this host offers dir", driver), EINVAL);
    TRY_VOID(storage::pool::check_name("pool name", name));
    if (path.empty() || path[0] != '/')
        return fail(fmt::format("pool path '{}' must be an absolute path", path), EINVAL);
    if (m_inventory.get_pool(name)) return fail(fmt::format("a pool named {} already exists", name), EEXIST);
    // Open (and create) the folder first: a record must never point at a folder we cannot use.
    auto opened = TRY(DirectoryPool::open(name, path, MissingFolder::Create));
    inventory::PoolRecord record{.name = name, .driver = driver, .path = opened->path(), .created_at = {}};
    auto stored = TRY(m_inventory.create_pool(record));
    std::lock_guard lock(m_mutex);
    m_pools[name] = std::move(opened);
    return stored;
}

Result<void> StorageService::delete_pool(const std::string& name) {
    auto* live = TRY(pool(name));
    auto volumes = TRY(live->list_volumes());
    if (!volumes.empty())
        return fail(fmt::format("pool {} still has {} volume(s); delete them first", name, volumes.size()), EBUSY);
    TRY_VOID(m_inventory.delete_pool(name));
    std::lock_guard lock(m_mutex);
    m_pools.erase(name);
    return {};
}

}  // namespace corral::daemon
