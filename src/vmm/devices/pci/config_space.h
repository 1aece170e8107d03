#pragma once

#include <array>
#include <cstdint>
#include <span>

#include "base/result.h"
#include "vmm/devices/pci/pci_state.h"

namespace corral::vmm {

/// The identity of a PCI function (type 0 header fields).
struct PciIds {
    uint16_t vendor = 0;
    uint16_t device = 0;
    uint32_t class_code = 0;  // base class << 16 | subclass << 8 | programming interface
    uint8_t revision = 0;
    uint16_t subsystem_vendor = 0;
    uint16_t subsystem = 0;
};

/// How a memory BAR decodes addresses (PCI 3.0 §6.2.5.1, bits 2:1 of the BAR).
enum class PciBarKind { Memory32, Memory64 };

/// A type 0 configuration header plus capabilities, 256 bytes, with a per-byte mask of what the
/// guest may write. Everything else reads back as set up.
///
/// BAR sizing (PCI 3.0 §6.2.5.1) falls out of the masks: the address bits below the BAR's size
/// are read-only zeros and the type bits are read-only, so writing all ones and reading back
/// gives ~(size - 1) | type. The upper half of a 64-bit BAR is fully writable.
///
/// Not thread-safe: its owner serializes accesses (config cycles are serialized by PciConfigIo).
class PciConfigSpace {
public:
    static constexpr size_t k_size = 256;
    static constexpr uint16_t k_command = 0x04;
    static constexpr uint16_t k_status = 0x06;
    static constexpr uint16_t k_bar0 = 0x10;
    static constexpr uint16_t k_capabilities_pointer = 0x34;
    static constexpr uint16_t k_interrupt_line = 0x3C;
    static constexpr uint16_t k_first_capability = 0x40;
    static constexpr uint16_t k_command_memory_space = 1 << 1;
    static constexpr uint16_t k_command_bus_master = 1 << 2;
    static constexpr uint16_t k_status_capabilities_list = 1 << 4;

    explicit PciConfigSpace(const PciIds& ids);

    /// Declares memory BAR `index` (0-5; a 64-bit BAR also takes index + 1) of `size` bytes
    /// (a power of two, at least 16) at `address` (aligned to `size`).
    Result<void> set_bar(unsigned index, uint64_t address, uint64_t size, PciBarKind kind);
    /// The address BAR `index` holds now (the guest may have written another one).
    uint64_t bar_address(unsigned index) const;
    /// True when `offset` (a config write) touched BAR registers.
    static bool is_bar_register(uint16_t offset) { return offset >= k_bar0 && offset < k_bar0 + 24; }

    /// Appends a capability to the list and returns its offset. `bytes` is the whole capability
    /// (byte 0 the ID; byte 1, the next pointer, is filled in here); `writable` is a write mask
    /// per byte, the same length or empty (read-only).
    Result<uint8_t> add_capability(std::span<const uint8_t> bytes, std::span<const uint8_t> writable = {});

    /// Guest accesses; out-of-range bytes read as all ones and are not written.
    void read(uint16_t offset, std::span<uint8_t> data) const;
    void write(uint16_t offset, std::span<const uint8_t> data);

    /// The owner's unmasked view.
    uint8_t byte(uint16_t offset) const { return offset < k_size ? m_bytes[offset] : 0xFF; }
    uint16_t u16(uint16_t offset) const;
    uint32_t u32(uint16_t offset) const;
    void set_u8(uint16_t offset, uint8_t value);
    void set_u16(uint16_t offset, uint16_t value);
    void set_u32(uint16_t offset, uint32_t value);
    uint16_t command() const { return u16(k_command); }

    /// The bytes, for a snapshot.
    PciConfigSpaceState save() const { return PciConfigSpaceState{m_bytes}; }
    /// Takes saved bytes after checking that they differ from the current ones only where the
    /// guest may write (so a snapshot of another device, or a doctored one, is refused).
    Result<void> restore(const PciConfigSpaceState& state);

private:
    std::array<uint8_t, k_size> m_bytes{};
    std::array<uint8_t, k_size> m_writable{};
    std::array<PciBarKind, 6> m_bar_kinds{};
    std::array<bool, 6> m_bar_present{};
    uint8_t m_last_capability = 0;  // offset of the last capability, 0 if none
    uint16_t m_next_capability = k_first_capability;
};

}  // namespace corral::vmm
