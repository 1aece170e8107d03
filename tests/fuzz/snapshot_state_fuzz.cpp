// libFuzzer target for snapshot state files: a snapshot folder may come from anywhere (a
// copied file, a full disk, a hostile user), and --restore and --inspect-snapshot decode it.
// Decoding must never crash, read out of bounds or allocate without bound; what decodes must
// encode back to the same bytes (nothing is silently dropped or invented).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include <vector>

#include "vmm/snapshot/crc32c.h"
#include "vmm/snapshot/snapshot_file.h"

namespace {

void check(std::span<const uint8_t> bytes) {
    using namespace corral::vmm::snapshot;
    auto state = decode_state_file(bytes);
    if (!state) return;
    auto again = decode_state_file(encode_state_file(*state));
    if (!again) std::abort();
    if (encode_state_file(*again) != encode_state_file(*state)) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace corral::vmm::snapshot;
    check(std::span(data, size));
    // Mutations nearly always break the checksum; with the header's length and CRC fixed up,
    // they reach the section decoders behind it (a hostile file can carry a valid CRC).
    if (size < k_state_header_size) return 0;
    std::vector<uint8_t> fixed(data, data + size);
    uint64_t length = size - k_state_header_size;
    uint32_t crc = crc32c(std::span(fixed).subspan(k_state_header_size));
    for (size_t i = 0; i < 8; ++i) fixed[16 + i] = static_cast<uint8_t>(length >> (8 * i));
    for (size_t i = 0; i < 4; ++i) fixed[24 + i] = static_cast<uint8_t>(crc >> (8 * i));
    check(fixed);
    return 0;
}
