#include "vmm/devices/pci/config_space.h"

#include <bit>

#include <fmt/format.h>

namespace corral::vmm {

PciConfigSpace::PciConfigSpace(const PciIds& ids) {
    set_u16(0x00, ids.vendor);
    set_u16(0x02, ids.device);
    set_u8(0x08, ids.revision);
    set_u8(0x09, static_cast<uint8_t>(ids.class_code));
    set_u8(0x0A, static_cast<uint8_t>(ids.class_code >> 8));
    set_u8(0x0B, static_cast<uint8_t>(ids.class_code >> 16));
    set_u8(0x0E, 0x00);  // header type 0, single function
    set_u16(0x2C, ids.subsystem_vendor);
    set_u16(0x2E, ids.subsystem);
    // Command: I/O space, memory space, bus master, parity error response, SERR#, INTx disable.
    m_writable[k_command] = 0x47;
    m_writable[k_command + 1] = 0x05;
    m_writable[0x0C] = 0xFF;  // cache line size
    m_writable[0x0D] = 0xFF;  // latency timer
    m_writable[k_interrupt_line] = 0xFF;
    // Interrupt pin (0x3D) stays 0: no INTx; devices use MSI-X (the DSDT has no _PRT).
}

Result<void> PciConfigSpace::set_bar(unsigned index, uint64_t address, uint64_t size, PciBarKind kind) {
    unsigned slots = kind == PciBarKind::Memory64 ? 2 : 1;
    if (index + slots > 6) return fail(fmt::format("PCI BAR {} does not exist", index));
    if (size < 16 || !std::has_single_bit(size) || address % size != 0)
        return fail(fmt::format("PCI BAR {}: size 0x{:x} at 0x{:x} is not a naturally aligned power of two",
                                index, size, address));
    if (kind == PciBarKind::Memory32 && (address + size > (1ull << 32) || size > (1ull << 31)))
        return fail(fmt::format("PCI BAR {}: a 32-bit BAR cannot hold 0x{:x}+0x{:x}", index, address, size));
    if (kind == PciBarKind::Memory64 && size > (1ull << 31))
        return fail("PCI BAR: sizes above 2 GiB are not supported");
    uint16_t offset = static_cast<uint16_t>(k_bar0 + 4 * index);
    uint32_t type_bits = kind == PciBarKind::Memory64 ? 0x4 : 0x0;  // bits 2:1 = 10b: 64-bit
    set_u32(offset, static_cast<uint32_t>(address) | type_bits);
    uint32_t mask = static_cast<uint32_t>(~(size - 1)) & ~0xFu;
    for (unsigned i = 0; i < 4; ++i) m_writable[offset + i] = static_cast<uint8_t>(mask >> (8 * i));
    if (kind == PciBarKind::Memory64) {
        set_u32(offset + 4, static_cast<uint32_t>(address >> 32));
        for (unsigned i = 4; i < 8; ++i) m_writable[offset + i] = 0xFF;
    }
    m_bar_kinds[index] = kind;
    m_bar_present[index] = true;
    return {};
}

uint64_t PciConfigSpace::bar_address(unsigned index) const {
    if (index >= 6 || !m_bar_present[index]) return 0;
    uint16_t offset = static_cast<uint16_t>(k_bar0 + 4 * index);
    uint64_t address = u32(offset) & ~0xFu;
    if (m_bar_kinds[index] == PciBarKind::Memory64) address |= uint64_t{u32(offset + 4)} << 32;
    return address;
}

Result<uint8_t> PciConfigSpace::add_capability(std::span<const uint8_t> bytes,
                                               std::span<const uint8_t> writable) {
    if (bytes.size() < 2 || (!writable.empty() && writable.size() != bytes.size()))
        return fail("PCI capability: bad layout");
    uint16_t offset = m_next_capability;
    if (offset + bytes.size() > k_size) return fail("PCI capabilities do not fit in config space");
    for (size_t i = 0; i < bytes.size(); ++i) {
        m_bytes[offset + i] = bytes[i];
        m_writable[offset + i] = writable.empty() ? 0 : writable[i];
    }
    m_bytes[offset + 1] = 0;  // end of list until another one is appended
    m_writable[offset] = m_writable[offset + 1] = 0;
    if (m_last_capability == 0) {
        m_bytes[k_capabilities_pointer] = static_cast<uint8_t>(offset);
        set_u16(k_status, u16(k_status) | k_status_capabilities_list);
    } else {
        m_bytes[m_last_capability + 1] = static_cast<uint8_t>(offset);
    }
    m_last_capability = static_cast<uint8_t>(offset);
    // Capabilities start on dword boundaries (PCI 3.0 §6.7: the bottom two pointer bits are reserved).
    m_next_capability = static_cast<uint16_t>((offset + bytes.size() + 3) & ~size_t{3});
    return static_cast<uint8_t>(offset);
}

void PciConfigSpace::read(uint16_t offset, std::span<uint8_t> data) const {
    for (size_t i = 0; i < data.size(); ++i) data[i] = byte(static_cast<uint16_t>(offset + i));
}

void PciConfigSpace::write(uint16_t offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); ++i) {
        size_t at = offset + i;
        if (at >= k_size) return;
        m_bytes[at] = static_cast<uint8_t>((m_bytes[at] & ~m_writable[at]) | (data[i] & m_writable[at]));
    }
}

uint16_t PciConfigSpace::u16(uint16_t offset) const {
    return static_cast<uint16_t>(byte(offset) | byte(offset + 1) << 8);
}

uint32_t PciConfigSpace::u32(uint16_t offset) const {
    return uint32_t{u16(offset)} | uint32_t{u16(offset + 2)} << 16;
}

void PciConfigSpace::set_u8(uint16_t offset, uint8_t value) {
    if (offset < k_size) m_bytes[offset] = value;
}

void PciConfigSpace::set_u16(uint16_t offset, uint16_t value) {
    set_u8(offset, static_cast<uint8_t>(value));
    set_u8(offset + 1, static_cast<uint8_t>(value >> 8));
}

void PciConfigSpace::set_u32(uint16_t offset, uint32_t value) {
    set_u16(offset, static_cast<uint16_t>(value));
    set_u16(offset + 2, static_cast<uint16_t>(value >> 16));
}

Result<void> PciConfigSpace::restore(const PciConfigSpaceState& state) {
    for (size_t i = 0; i < k_size; ++i) {
        if ((state.bytes[i] ^ m_bytes[i]) & ~m_writable[i])
            return fail(ErrorKind::Invalid,
                        fmt::format("PCI config space: read-only byte 0x{:02x} is 0x{:02x} in the "
                                    "snapshot and 0x{:02x} in this device (another device?)",
                                    i, state.bytes[i], m_bytes[i]));
    }
    m_bytes = state.bytes;
    return {};
}

}  // namespace corral::vmm
