#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace corral::vmm {

/// What a read of a port that no device drives returns on a PC (the ISA data lines float high).
constexpr uint8_t k_open_bus_byte = 0xFF;

/// Splits a guest read of any width into single-byte register reads at consecutive offsets.
///
/// Legacy devices have 8-bit registers. When a 16- or 32-bit I/O cycle reaches an 8-bit ISA
/// device, the bus controller runs one 8-bit cycle per byte at port, port + 1, ..., so an
/// `inw` from 0x70 reads 0x70 then 0x71. We do the same, side effects included. Bytes past the
/// end of the device's `length` ports belong to no one here and read as open bus. The offset
/// comes from the guest, so the bounds check is written not to overflow.
template <typename ReadByte>
void read_bytewise(uint64_t offset, std::span<uint8_t> data, uint64_t length,
                   ReadByte&& read_byte) {
    for (size_t i = 0; i < data.size(); ++i) {
        bool inside = offset < length && i < length - offset;
        data[i] = inside ? read_byte(offset + i) : k_open_bus_byte;
    }
}

/// The write counterpart of read_bytewise(): one register write per byte, in address order;
/// bytes past the device's range are dropped.
template <typename WriteByte>
void write_bytewise(uint64_t offset, std::span<const uint8_t> data, uint64_t length,
                    WriteByte&& write_byte) {
    for (size_t i = 0; i < data.size(); ++i) {
        if (offset < length && i < length - offset)
            write_byte(offset + i, data[i]);
    }
}

}  // namespace corral::vmm
