#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>

namespace corral::vmm {

/// Counts guest accesses no device claims. Each (space, address, direction) is logged once, and
/// the set of logged addresses is bounded, because a hostile guest can probe every port.
class UnhandledAccessLog {
public:
    enum class Space { Port, Mmio };
    enum class Direction { Read, Write };

    void record(Space space, uint64_t address, Direction direction);
    uint64_t count() const { return m_count.load(std::memory_order_relaxed); }

private:
    static constexpr size_t k_max_logged = 256;
    std::atomic<uint64_t> m_count{0};
    std::mutex m_mutex;
    std::set<uint64_t> m_logged;  // keys: address << 2 | space << 1 | direction
};

}  // namespace corral::vmm
