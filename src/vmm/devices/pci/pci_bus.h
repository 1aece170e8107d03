#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

#include "base/result.h"
#include "vmm/devices/bus_device.h"
#include "vmm/devices/pci/pci_device.h"

namespace corral::vmm {

/// PCI bus 0: up to 32 single-function devices, by slot (device number). Filled by the builder
/// before the vCPUs start, read-only afterwards.
class PciBus {
public:
    static constexpr unsigned k_slots = 32;

    /// Places `device` in `slot`; fails if the slot is taken or out of range.
    Result<void> attach(unsigned slot, std::shared_ptr<PciDevice> device);
    /// The first free slot, or an error when all 32 are taken.
    Result<unsigned> free_slot() const;
    PciDevice* device(unsigned slot) const { return slot < k_slots ? m_slots[slot].get() : nullptr; }

private:
    std::array<std::shared_ptr<PciDevice>, k_slots> m_slots;
};

/// PCI configuration mechanism #1 (PCI Local Bus 3.0 §3.2.2.3.2): CONFIG_ADDRESS at port 0xCF8
/// and CONFIG_DATA at 0xCFC-0xCFF.
///
/// Port placement: the reset control register (ResetControl) owns port 0xCF9, inside the dword
/// at 0xCF8, so this device is placed as three bus ranges: address_port() at 0xCF8 with length
/// 1 (the bus dispatches by start address, so a dword access at 0xCF8 arrives here whole, with
/// size 4, while a byte access to 0xCF9 still reaches ResetControl), address_high_port() at
/// 0xCFA with length 2 (byte accesses, such as Linux's type 1 probe writing 0x01 to 0xCFB, are
/// accepted and ignored) and data_port() at 0xCFC with length 4.
///
/// Only dword writes to 0xCF8 load CONFIG_ADDRESS (§3.2.2.3.2: other sizes are plain I/O);
/// narrower reads return its bytes. CONFIG_DATA accesses of 1, 2 or 4 bytes at 0xCFC+n reach
/// register (CONFIG_ADDRESS & 0xFC) + n of the addressed function when the enable bit is set,
/// the bus is 0, the function is 0 and a device is in the slot; anything else reads as all ones
/// and writes are dropped. The extended register bits (27:24) are ignored.
///
/// Thread safety: one mutex serializes every access (the address register is shared by all
/// vCPUs, as on hardware; guests lock around the address/data pair themselves).
class PciConfigIo {
public:
    explicit PciConfigIo(std::shared_ptr<PciBus> bus);

    std::shared_ptr<BusDevice> address_port() const { return m_address_port; }
    std::shared_ptr<BusDevice> address_high_port() const { return m_address_high_port; }
    std::shared_ptr<BusDevice> data_port() const { return m_data_port; }

    static constexpr uint16_t k_address_port = 0xCF8;
    static constexpr uint16_t k_address_high_port = 0xCFA;
    static constexpr uint16_t k_data_port = 0xCFC;

    /// What the bus devices do (also used by tests).
    void read_address(uint64_t offset, std::span<uint8_t> data);
    void write_address(uint64_t offset, std::span<const uint8_t> data);
    void read_data(uint64_t offset, std::span<uint8_t> data);
    void write_data(uint64_t offset, std::span<const uint8_t> data);

    /// CONFIG_ADDRESS as the guest last loaded it: a snapshot taken between a guest's write to
    /// 0xCF8 and its access to 0xCFC must bring the latch back, or that access reaches another
    /// register (or none).
    uint32_t config_address();
    void set_config_address(uint32_t address);

private:
    /// The device CONFIG_ADDRESS selects, or nullptr.
    PciDevice* selected_device() const;

    std::shared_ptr<PciBus> m_bus;
    std::shared_ptr<BusDevice> m_address_port;
    std::shared_ptr<BusDevice> m_address_high_port;
    std::shared_ptr<BusDevice> m_data_port;
    std::mutex m_mutex;
    uint32_t m_address = 0;
};

}  // namespace corral::vmm
