#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "base/result.h"
#include "vmm/devices/pci/msi.h"
#include "vmm/devices/pci/pci_state.h"

namespace corral::vmm {

/// Counters of one MSI-X table.
struct MsixCounters {
    uint64_t delivered = 0;  // messages sent to the guest
    uint64_t pended = 0;     // notifications held back by a mask (sent later on unmask)
    uint64_t dropped = 0;    // notifications for vectors that do not exist or while disabled
};

/// An MSI-X capability, table and pending bit array (PCI Local Bus 3.0 §6.8.2).
///
/// The capability lives in config space (see capability()); its Message Control word is kept
/// here via write_control(). The table and PBA live in a memory BAR: the owner forwards BAR
/// accesses at their offsets to read_table()/write_table()/read_pba().
///
/// Delivery: notify(v) sends vector v when MSI-X is enabled, the function is not masked and the
/// vector is not masked; when only masks hold it back the pending bit is set and the message is
/// sent when the last mask goes (§6.8.2.8, §6.8.2.9). While MSI-X is disabled, notifications
/// are dropped (the device would use INTx, which these devices do not have).
///
/// Routing: a vector's address/data are handed to MsiVectors::route() when the vector is
/// unmasked after they changed (Linux masks a vector while rewriting it), so three dword
/// writes cost one routing update.
///
/// Thread safety: one mutex; table writes come from vCPU threads, notify() from device threads.
class MsixTable {
public:
    static constexpr uint8_t k_capability_id = 0x11;
    static constexpr uint16_t k_control_enable = 1 << 15;
    static constexpr uint16_t k_control_function_mask = 1 << 14;
    static constexpr uint16_t k_max_vectors = 2048;
    static constexpr size_t k_entry_size = 16;

    /// `vector_count` is 1..2048; `sink` must outlive the table.
    MsixTable(uint16_t vector_count, MsiVectors& sink);

    uint16_t vector_count() const { return m_vector_count; }
    uint64_t table_size() const { return uint64_t{m_vector_count} * k_entry_size; }
    uint64_t pba_size() const { return (uint64_t{m_vector_count} + 63) / 64 * 8; }

    /// The 12-byte capability for config space, table and PBA in BAR `bar` at the given offsets
    /// (8-byte aligned), and its write mask (only Message Control's enable and function mask).
    std::array<uint8_t, 12> capability(uint8_t bar, uint32_t table_offset, uint32_t pba_offset) const;
    static std::array<uint8_t, 12> capability_write_mask();
    /// Message Control as the guest just wrote it (the owner reads it back from config space).
    void write_control(uint16_t control);

    void read_table(uint64_t offset, std::span<uint8_t> data);
    void write_table(uint64_t offset, std::span<const uint8_t> data);
    void read_pba(uint64_t offset, std::span<uint8_t> data);

    /// Signals `vector` (see the class comment). Any thread.
    void notify(uint16_t vector);

    bool enabled() const;
    bool function_masked() const;
    bool vector_masked(uint16_t vector) const;
    bool pending(uint16_t vector) const;
    MsixCounters counters() const;

    /// The table, PBA and Message Control bits, for a snapshot.
    MsixState save() const;
    /// Takes a saved table of the same size, re-routes every unmasked vector (a restored VM
    /// has fresh GSI routes) and sends pending vectors that are deliverable.
    Result<void> restore(const MsixState& state);

private:
    struct Entry {
        std::array<uint8_t, k_entry_size> bytes{};  // address lo, hi, data, vector control
        bool pending = false;
        bool routed_stale = true;  // address/data changed since the last route()
    };
    MsiMessage message(const Entry& entry) const;
    bool masked(const Entry& entry) const { return entry.bytes[12] & 1; }
    /// Routes changed unmasked vectors and sends pending ones that are deliverable now.
    void sync_locked();

    MsiVectors& m_sink;
    uint16_t m_vector_count;
    mutable std::mutex m_mutex;
    std::vector<Entry> m_entries;  // m_vector_count entries (bounded by k_max_vectors)
    bool m_enabled = false;
    bool m_function_masked = false;
    MsixCounters m_counters;
};

}  // namespace corral::vmm
