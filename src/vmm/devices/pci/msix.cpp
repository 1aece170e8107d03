#include "vmm/devices/pci/msix.h"

#include <algorithm>

#include <fmt/format.h>

namespace corral::vmm {

MsixTable::MsixTable(uint16_t vector_count, MsiVectors& sink)
    : m_sink(sink), m_vector_count(std::clamp<uint16_t>(vector_count, 1, k_max_vectors)) {
    m_entries.resize(m_vector_count);
    // §6.8.2.9: vector control's mask bit is set after reset.
    for (auto& entry : m_entries) entry.bytes[12] = 1;
}

std::array<uint8_t, 12> MsixTable::capability(uint8_t bar, uint32_t table_offset,
                                              uint32_t pba_offset) const {
    std::array<uint8_t, 12> bytes{};
    bytes[0] = k_capability_id;
    uint16_t control = static_cast<uint16_t>(m_vector_count - 1);  // table size is N - 1
    bytes[2] = static_cast<uint8_t>(control);
    bytes[3] = static_cast<uint8_t>(control >> 8);
    uint32_t table = (table_offset & ~7u) | (bar & 7u);
    uint32_t pba = (pba_offset & ~7u) | (bar & 7u);
    for (unsigned i = 0; i < 4; ++i) {
        bytes[4 + i] = static_cast<uint8_t>(table >> (8 * i));
        bytes[8 + i] = static_cast<uint8_t>(pba >> (8 * i));
    }
    return bytes;
}

std::array<uint8_t, 12> MsixTable::capability_write_mask() {
    std::array<uint8_t, 12> mask{};
    mask[3] = 0xC0;  // Message Control bits 15 (enable) and 14 (function mask)
    return mask;
}

void MsixTable::write_control(uint16_t control) {
    std::lock_guard lock(m_mutex);
    m_enabled = control & k_control_enable;
    m_function_masked = control & k_control_function_mask;
    sync_locked();
}

MsiMessage MsixTable::message(const Entry& entry) const {
    auto u32 = [&](size_t at) {
        return uint32_t{entry.bytes[at]} | uint32_t{entry.bytes[at + 1]} << 8 |
               uint32_t{entry.bytes[at + 2]} << 16 | uint32_t{entry.bytes[at + 3]} << 24;
    };
    return MsiMessage{uint64_t{u32(0)} | uint64_t{u32(4)} << 32, u32(8)};
}

void MsixTable::read_table(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_mutex);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t at = offset + i;  // offsets come from the BAR dispatch: bounded by its size
        data[i] = at < table_size() ? m_entries[at / k_entry_size].bytes[at % k_entry_size] : 0;
    }
}

void MsixTable::write_table(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_mutex);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t at = offset + i;
        if (at >= table_size()) break;
        Entry& entry = m_entries[at / k_entry_size];
        size_t field = at % k_entry_size;
        if (field < 12) {
            if (entry.bytes[field] != data[i]) entry.routed_stale = true;
            entry.bytes[field] = data[i];
        } else if (field == 12) {
            entry.bytes[12] = data[i] & 1;  // only the mask bit is defined; the rest reads 0
        }
    }
    sync_locked();
}

void MsixTable::read_pba(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_mutex);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t first_vector = (offset + i) * 8;
        uint8_t bits = 0;
        for (unsigned bit = 0; bit < 8; ++bit) {
            uint64_t vector = first_vector + bit;
            if (vector < m_vector_count && m_entries[vector].pending) bits |= static_cast<uint8_t>(1u << bit);
        }
        data[i] = bits;
    }
}

void MsixTable::sync_locked() {
    for (uint16_t vector = 0; vector < m_vector_count; ++vector) {
        Entry& entry = m_entries[vector];
        if (masked(entry)) continue;
        if (entry.routed_stale) {
            m_sink.route(vector, message(entry));
            entry.routed_stale = false;
        }
        if (entry.pending && m_enabled && !m_function_masked) {
            entry.pending = false;
            m_sink.trigger(vector);
            ++m_counters.delivered;
        }
    }
}

void MsixTable::notify(uint16_t vector) {
    std::lock_guard lock(m_mutex);
    if (vector >= m_vector_count || !m_enabled) {
        ++m_counters.dropped;
        return;
    }
    Entry& entry = m_entries[vector];
    if (m_function_masked || masked(entry)) {
        entry.pending = true;
        ++m_counters.pended;
        return;
    }
    if (entry.routed_stale) {  // unmasked but changed while unmasked (a guest may do that)
        m_sink.route(vector, message(entry));
        entry.routed_stale = false;
    }
    m_sink.trigger(vector);
    ++m_counters.delivered;
}

bool MsixTable::enabled() const {
    std::lock_guard lock(m_mutex);
    return m_enabled;
}

bool MsixTable::function_masked() const {
    std::lock_guard lock(m_mutex);
    return m_function_masked;
}

bool MsixTable::vector_masked(uint16_t vector) const {
    std::lock_guard lock(m_mutex);
    return vector < m_vector_count ? masked(m_entries[vector]) : true;
}

bool MsixTable::pending(uint16_t vector) const {
    std::lock_guard lock(m_mutex);
    return vector < m_vector_count && m_entries[vector].pending;
}

MsixCounters MsixTable::counters() const {
    std::lock_guard lock(m_mutex);
    return m_counters;
}

MsixState MsixTable::save() const {
    std::lock_guard lock(m_mutex);
    MsixState state{m_enabled, m_function_masked, {}, {}};
    for (const Entry& entry : m_entries) {
        state.entries.push_back(entry.bytes);
        state.pending.push_back(entry.pending);
    }
    return state;
}

Result<void> MsixTable::restore(const MsixState& state) {
    if (state.entries.size() != m_vector_count || state.pending.size() != m_vector_count)
        return fail(ErrorKind::Invalid,
                    fmt::format("MSI-X state has {} vectors; this device has {}",
                                state.entries.size(), m_vector_count));
    std::lock_guard lock(m_mutex);
    for (uint16_t i = 0; i < m_vector_count; ++i) {
        m_entries[i].bytes = state.entries[i];
        // Vector control: only the mask bit exists (§6.8.2.9); the rest reads as zero.
        m_entries[i].bytes[12] &= 1;
        m_entries[i].bytes[13] = m_entries[i].bytes[14] = m_entries[i].bytes[15] = 0;
        m_entries[i].pending = state.pending[i];
        m_entries[i].routed_stale = true;
    }
    m_enabled = state.enabled;
    m_function_masked = state.function_masked;
    sync_locked();
    return {};
}

}  // namespace corral::vmm
