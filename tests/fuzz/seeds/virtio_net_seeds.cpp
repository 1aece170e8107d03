// Seeds for virtio_net_fuzz: TX chains as Linux's virtio_net sends them (header and frame in
// one buffer, or split, with checksum offload and TSO) and RX chains as it posts them (one
// big buffer, or a header buffer then page-sized ones).
#include "ring_image.h"
#include "vmm/devices/virtio/net/frames.h"

namespace corral::fuzz {

using namespace virtio_layout;
namespace net = corral::vmm::virtio;

namespace {

void frame_header(RingImage& image, uint64_t at, uint8_t flags, uint8_t gso) {
    image.put<uint8_t>(at, flags);
    image.put<uint8_t>(at + 1, gso);
    image.put<uint16_t>(at + 2, 54);    // hdr_len
    image.put<uint16_t>(at + 4, 1448);  // gso_size
    image.put<uint16_t>(at + 6, 34);    // csum_start
    image.put<uint16_t>(at + 8, 16);    // csum_offset
    for (uint64_t i = 0; i < 14; ++i) image.put<uint8_t>(at + 12 + i, static_cast<uint8_t>(0x50 + i));
}

}  // namespace

std::vector<Input> make_seeds() {
    std::vector<Input> seeds;
    // Control byte: 4 = CSUM, 8 = HOST_TSO4, 16 = HOST_TSO6, 32 = MRG_RXBUF; 1 = INDIRECT_DESC.
    for (uint8_t features : {0, 4 | 8 | 16, 1 | 4, 32 | 4 | 8 | 16, 32 | 1 | 2}) {
        RingImage image(features, 3);  // 8 entries per ring
        uint64_t buffer = k_buffers;
        // TX 0: header + 60-byte frame in one buffer.
        frame_header(image, buffer, 0, net::k_net_hdr_gso_none);
        image.descriptor(k_ring0_descriptors, 0, buffer, 12 + 60, 0);
        image.publish(k_ring0_avail, 0);
        buffer += 0x100;
        // TX 1: header alone, then the frame in two pieces; checksum offload, TSO when offered.
        frame_header(image, buffer, features & 4 ? net::k_net_hdr_f_needs_csum : 0,
                     features & 8 ? net::k_net_hdr_gso_tcpv4 : net::k_net_hdr_gso_none);
        image.descriptor(k_ring0_descriptors, 1, buffer, 12, k_next, 2);
        image.descriptor(k_ring0_descriptors, 2, buffer + 12, 100, k_next, 3);
        image.descriptor(k_ring0_descriptors, 3, buffer + 0x200, 1400, 0);
        image.publish(k_ring0_avail, 1);
        buffer += 0x800;
        // RX 0: one 1526-byte writable buffer.
        image.descriptor(k_ring1_descriptors, 0, buffer, 1526, k_write);
        image.publish(k_ring1_avail, 0);
        buffer += 0x600;
        // RX 1: a header buffer, then two larger ones ("big packets" without MRG_RXBUF).
        image.descriptor(k_ring1_descriptors, 1, buffer, 12, k_write | k_next, 2);
        image.descriptor(k_ring1_descriptors, 2, buffer + 0x100, 4096, k_write | k_next, 3);
        image.descriptor(k_ring1_descriptors, 3, buffer + 0x1100, 8192, k_write);
        image.publish(k_ring1_avail, 1);
        if (features & 32) {
            // With MRG_RXBUF, Linux posts single page-sized buffers (and the hostile ones:
            // one with less than a header, two over the same memory).
            for (uint16_t index = 4; index < 8; ++index) {
                uint32_t length = index == 5 ? 8 : 1536;
                image.descriptor(k_ring1_descriptors, index, index == 7 ? buffer + 0x2000 : buffer + 0x800 * (index - 2),
                                 length, k_write);
                image.publish(k_ring1_avail, index);
            }
        }
        seeds.push_back(image.take());
    }
    // MRG_RXBUF with a ring of tiny buffers (4 of 16 bytes): no frame fits even the whole ring.
    RingImage tiny(32, 2);
    for (uint16_t index = 0; index < 4; ++index) {
        tiny.descriptor(k_ring1_descriptors, index, k_buffers + 0x10 * index, 16, k_write);
        tiny.publish(k_ring1_avail, index);
    }
    seeds.push_back(tiny.take());
    return seeds;
}

}  // namespace corral::fuzz
