#include "vmm/unhandled_access_log.h"

#include "base/log.h"

namespace corral::vmm {

void UnhandledAccessLog::record(Space space, uint64_t address, Direction direction) {
    m_count.fetch_add(1, std::memory_order_relaxed);
    uint64_t key = address << 2 | static_cast<uint64_t>(space) << 1 | static_cast<uint64_t>(direction);
    std::lock_guard lock(m_mutex);
    if (m_logged.size() >= k_max_logged || !m_logged.insert(key).second) return;
    log_info("unhandled {} {} 0x{:x} (logged once)", space == Space::Port ? "port" : "MMIO",
                direction == Direction::Read ? "read" : "write", address);
    if (m_logged.size() == k_max_logged)
        log_warning("{} distinct unhandled addresses seen; no longer logging new ones", k_max_logged);
}

}  // namespace corral::vmm
