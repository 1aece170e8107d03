// Seeds for virtio_block_fuzz: one request of each type, laid out as Linux's virtio_blk does
// (header, data, status in separate descriptors), with and without the optional features.
#include <tuple>

#include "ring_image.h"
#include "vmm/devices/virtio/block/request.h"

namespace corral::fuzz {

using namespace virtio_layout;
namespace blk = corral::vmm::virtio::block;

namespace {

struct Builder {
    RingImage image;
    uint16_t next_descriptor = 0;
    uint64_t next_buffer = k_buffers;

    uint64_t buffer(uint32_t length) {
        uint64_t at = next_buffer;
        next_buffer += (length + 0xff) & ~0xffull;
        return at;
    }
    /// A request: header, optional readable payload, optional writable data, status byte.
    void request(uint32_t type, uint64_t sector, uint32_t out_bytes, uint32_t in_bytes,
                 const std::vector<uint8_t>& payload = {}) {
        uint16_t head = next_descriptor;
        uint64_t header = buffer(blk::k_header_size);
        image.put<uint32_t>(header, type);
        image.put<uint64_t>(header + 8, sector);
        std::vector<std::tuple<uint64_t, uint32_t, uint16_t>> parts{{header, blk::k_header_size, 0}};
        if (out_bytes) {
            uint64_t at = buffer(out_bytes);
            if (!payload.empty()) image.put_bytes(at, payload);
            else image.put<uint8_t>(at, 0x5a);
            parts.emplace_back(at, out_bytes, 0);
        }
        if (in_bytes) parts.emplace_back(buffer(in_bytes), in_bytes, k_write);
        parts.emplace_back(buffer(1), 1, k_write);
        for (size_t i = 0; i < parts.size(); ++i) {
            auto [address, length, flags] = parts[i];
            bool last = i + 1 == parts.size();
            image.descriptor(k_ring0_descriptors, next_descriptor, address, length,
                             static_cast<uint16_t>(flags | (last ? 0 : k_next)),
                             static_cast<uint16_t>(next_descriptor + 1));
            ++next_descriptor;
        }
        image.publish(k_ring0_avail, head);
    }
};

std::vector<uint8_t> segment(uint64_t sector, uint32_t sectors, uint32_t flags) {
    std::vector<uint8_t> bytes(blk::k_segment_size);
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<uint8_t>(sector >> (8 * i));
    for (int i = 0; i < 4; ++i) bytes[8 + i] = static_cast<uint8_t>(sectors >> (8 * i));
    for (int i = 0; i < 4; ++i) bytes[12 + i] = static_cast<uint8_t>(flags >> (8 * i));
    return bytes;
}

}  // namespace

std::vector<Input> make_seeds() {
    std::vector<Input> seeds;
    // Control byte: 8 | 16 = DISCARD and WRITE_ZEROES negotiated; 4 = read-only; 1 = INDIRECT.
    for (uint8_t features : {8 | 16, 1 | 8 | 16, 4}) {
        Builder b{RingImage(features, 5)};
        b.request(blk::k_t_in, 3, 0, 1024);
        b.request(blk::k_t_out, 60, 2048, 0);
        b.request(blk::k_t_flush, 0, 0, 0);
        b.request(blk::k_t_get_id, 0, 0, blk::k_id_bytes);
        b.request(blk::k_t_discard, 0, blk::k_segment_size, 0, segment(8, 8, 0));
        b.request(blk::k_t_write_zeroes, 0, blk::k_segment_size, 0, segment(40, 24, blk::k_dwz_flag_unmap));
        seeds.push_back(b.image.take());
    }
    return seeds;
}

}  // namespace corral::fuzz
