#include "vmm/snapshot/crc32c.h"

#include <array>

namespace corral::vmm::snapshot {
namespace {

// Reflected form of the Castagnoli polynomial 0x1EDC6F41 (RFC 3720 §B.4).
constexpr uint32_t k_polynomial = 0x82F63B78;

constexpr std::array<uint32_t, 256> make_table() {
    std::array<uint32_t, 256> table{};
    for (uint32_t i = 0; i < 256; ++i) {
        uint32_t crc = i;
        for (int bit = 0; bit < 8; ++bit)
            crc = (crc & 1) ? (crc >> 1) ^ k_polynomial : crc >> 1;
        table[i] = crc;
    }
    return table;
}

constexpr std::array<uint32_t, 256> k_table = make_table();

}  // namespace

uint32_t crc32c(std::span<const uint8_t> bytes, uint32_t crc) {
    crc = ~crc;
    for (uint8_t byte : bytes)
        crc = k_table[(crc ^ byte) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

}  // namespace corral::vmm::snapshot
