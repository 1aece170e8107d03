#include "vmm/devices/pci/pci_bus.h"

#include <algorithm>

#include <fmt/format.h>

namespace corral::vmm {

Result<void> PciBus::attach(unsigned slot, std::shared_ptr<PciDevice> device) {
    if (slot >= k_slots) return fail(fmt::format("PCI slot {} does not exist (0-31)", slot));
    if (m_slots[slot]) return fail(fmt::format("PCI slot {} is already taken", slot));
    m_slots[slot] = std::move(device);
    return {};
}

Result<unsigned> PciBus::free_slot() const {
    for (unsigned slot = 0; slot < k_slots; ++slot)
        if (!m_slots[slot]) return slot;
    return fail("all 32 PCI slots are taken");
}

namespace {

/// One of PciConfigIo's port ranges.
class ConfigPort final : public BusDevice {
public:
    enum class Kind { Address, AddressHigh, Data };
    ConfigPort(PciConfigIo& io, Kind kind) : m_io(io), m_kind(kind) {}

    void read(uint64_t offset, std::span<uint8_t> data) override {
        switch (m_kind) {
            case Kind::Address: m_io.read_address(offset, data); break;
            case Kind::AddressHigh: std::fill(data.begin(), data.end(), 0xFF); break;
            case Kind::Data: m_io.read_data(offset, data); break;
        }
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        switch (m_kind) {
            case Kind::Address: m_io.write_address(offset, data); break;
            case Kind::AddressHigh: break;
            case Kind::Data: m_io.write_data(offset, data); break;
        }
    }

private:
    PciConfigIo& m_io;  // owns this port
    Kind m_kind;
};

}  // namespace

PciConfigIo::PciConfigIo(std::shared_ptr<PciBus> bus)
    : m_bus(std::move(bus)),
      m_address_port(std::make_shared<ConfigPort>(*this, ConfigPort::Kind::Address)),
      m_address_high_port(std::make_shared<ConfigPort>(*this, ConfigPort::Kind::AddressHigh)),
      m_data_port(std::make_shared<ConfigPort>(*this, ConfigPort::Kind::Data)) {}

void PciConfigIo::read_address(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_mutex);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t at = offset + i;
        data[i] = at < 4 ? static_cast<uint8_t>(m_address >> (8 * at)) : 0xFF;
    }
}

void PciConfigIo::write_address(uint64_t offset, std::span<const uint8_t> data) {
    if (offset != 0 || data.size() != 4) return;  // only dword writes load CONFIG_ADDRESS
    std::lock_guard lock(m_mutex);
    uint32_t value = uint32_t{data[0]} | uint32_t{data[1]} << 8 | uint32_t{data[2]} << 16 |
                     uint32_t{data[3]} << 24;
    // Bits 1:0 are read-only zeros for type 0/1 translation; bits 30:24 are reserved.
    m_address = value & 0x80FFFFFCu;
}

PciDevice* PciConfigIo::selected_device() const {
    if (!(m_address & 0x80000000u)) return nullptr;
    unsigned bus = (m_address >> 16) & 0xFF;
    unsigned slot = (m_address >> 11) & 0x1F;
    unsigned function = (m_address >> 8) & 0x7;
    if (bus != 0 || function != 0) return nullptr;
    return m_bus->device(slot);
}

void PciConfigIo::read_data(uint64_t offset, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), 0xFF);
    // The port range is 4 bytes, so offset < 4; an access must stay inside the dword.
    if (offset >= 4 || offset + data.size() > 4) return;
    std::lock_guard lock(m_mutex);
    PciDevice* device = selected_device();
    if (!device) return;
    device->read_config(static_cast<uint16_t>((m_address & 0xFC) + offset), data);
}

void PciConfigIo::write_data(uint64_t offset, std::span<const uint8_t> data) {
    if (offset >= 4 || offset + data.size() > 4) return;
    std::lock_guard lock(m_mutex);
    PciDevice* device = selected_device();
    if (!device) return;
    device->write_config(static_cast<uint16_t>((m_address & 0xFC) + offset), data);
}

uint32_t PciConfigIo::config_address() {
    std::lock_guard lock(m_mutex);
    return m_address;
}

void PciConfigIo::set_config_address(uint32_t address) {
    std::lock_guard lock(m_mutex);
    m_address = address;
}

}  // namespace corral::vmm
