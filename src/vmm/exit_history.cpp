#include "vmm/exit_history.h"

#include <linux/kvm.h>

#include <fmt/format.h>

namespace corral::vmm {

void ExitHistory::note(uint32_t reason, uint64_t address, bool write) {
    m_ring[m_count % k_kept] = {reason, address, write};
    ++m_count;
}

std::string ExitHistory::describe() const {
    if (m_count == 0) return "no exits";
    std::string out = fmt::format("{} exits; the last:", m_count);
    const uint64_t first = m_count > k_kept ? m_count - k_kept : 0;
    for (uint64_t i = first; i < m_count; ++i) {
        const Entry& entry = m_ring[i % k_kept];
        const char* direction = entry.write ? "write" : "read";
        switch (entry.reason) {
            case KVM_EXIT_IO: out += fmt::format(" io {} 0x{:x},", direction, entry.address); break;
            case KVM_EXIT_MMIO: out += fmt::format(" mmio {} 0x{:x},", direction, entry.address); break;
            default: out += fmt::format(" exit {},", entry.reason); break;
        }
    }
    out.pop_back();  // the last comma
    return out;
}

}  // namespace corral::vmm
