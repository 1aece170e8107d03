// Seeds for virtqueue_fuzz: rings with direct, mixed readable/writable and indirect chains.
#include "ring_image.h"

namespace corral::fuzz {

using namespace virtio_layout;

std::vector<Input> make_seeds() {
    std::vector<Input> seeds;
    for (uint8_t features : {0, 1, 3}) {  // plain, INDIRECT_DESC, INDIRECT_DESC + EVENT_IDX
        RingImage image(features, 4);     // 16 entries
        // A readable buffer, then two writable ones.
        image.descriptor(k_ring0_descriptors, 0, k_buffers, 16, k_next, 1);
        image.descriptor(k_ring0_descriptors, 1, k_buffers + 0x100, 512, k_next | k_write, 2);
        image.descriptor(k_ring0_descriptors, 2, k_buffers + 0x400, 1, k_write);
        image.publish(k_ring0_avail, 0);
        // A single buffer.
        image.descriptor(k_ring0_descriptors, 3, k_buffers + 0x800, 64, 0);
        image.publish(k_ring0_avail, 3);
        if (features & 1) {
            // An indirect table of three descriptors at k_buffers + 0x1000.
            uint64_t table = k_buffers + 0x1000;
            image.descriptor(table, 0, k_buffers + 0x2000, 16, k_next, 1);
            image.descriptor(table, 1, k_buffers + 0x2100, 4096, k_next | k_write, 2);
            image.descriptor(table, 2, k_buffers + 0x3100, 1, k_write);
            image.descriptor(k_ring0_descriptors, 4, table, 48, k_indirect);
            image.publish(k_ring0_avail, 4);
        }
        image.put<uint8_t>(k_buffers, 0x11);  // some data for the mutator to find
        seeds.push_back(image.take());
    }
    return seeds;
}

}  // namespace corral::fuzz
