#include "vmm/snapshot/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

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

uint32_t update_portable(uint32_t crc, const uint8_t* data, size_t size) {
    for (size_t i = 0; i < size; ++i)
        crc = k_table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
    return crc;
}

#if defined(__x86_64__)
// The instruction computes the same reflected Castagnoli CRC, 8 bytes at a time. Built for SSE4.2
// in this function only: the rest of the program stays baseline x86-64, and this runs only after
// the CPU said it has the instruction.
__attribute__((target("sse4.2"))) uint32_t update_sse42(uint32_t crc, const uint8_t* data, size_t size) {
    uint64_t wide = crc;
    for (; size >= 8; data += 8, size -= 8) {
        uint64_t word;
        std::memcpy(&word, data, 8);  // any alignment
        wide = _mm_crc32_u64(wide, word);
    }
    auto narrow = static_cast<uint32_t>(wide);
    for (; size > 0; ++data, --size)
        narrow = _mm_crc32_u8(narrow, *data);
    return narrow;
}

const bool k_has_sse42 = __builtin_cpu_supports("sse4.2");
#endif

}  // namespace

uint32_t crc32c(std::span<const uint8_t> bytes, uint32_t crc) {
#if defined(__x86_64__)
    if (k_has_sse42)
        return ~update_sse42(~crc, bytes.data(), bytes.size());
#endif
    return ~update_portable(~crc, bytes.data(), bytes.size());
}

uint32_t crc32c_portable(std::span<const uint8_t> bytes, uint32_t crc) {
    return ~update_portable(~crc, bytes.data(), bytes.size());
}

}  // namespace corral::vmm::snapshot
