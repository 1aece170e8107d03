// libFuzzer target for the split virtqueue: the input is a guest's memory image (rings,
// descriptors, indirect tables, indices), so every chain the queue accepts was built by the
// fuzzer. The queue must never crash, hand out a buffer outside guest RAM, or return more
// chains than it was offered.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "virtio_fuzz_layout.h"
#include "vmm/devices/virtio/queue.h"
#include "vmm/memory/guest_memory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace corral::vmm;
    using namespace corral::vmm::virtio;
    using namespace corral::fuzz::virtio_layout;
    static GuestMemory memory = GuestMemory::create(k_memory).value();
    if (size < k_prefix) return 0;
    uint8_t* ram = memory.host_pointer(0, k_memory);
    std::memset(ram, 0, k_memory);
    std::memcpy(ram, data + k_prefix, std::min<size_t>(size - k_prefix, k_memory));
    QueueFeatures features{.indirect_descriptors = (data[0] & 1) != 0, .event_index = (data[0] & 2) != 0};
    uint16_t queue_size = corral::fuzz::virtio_layout::queue_size(data[1]);
    QueueLayout layout{queue_size, k_ring0_descriptors, k_ring0_avail, k_ring0_used};
    auto queue = Virtqueue::create(memory, layout, features);
    if (!queue) std::abort();  // the layout is valid by construction
    uint64_t chains = 0;
    for (int round = 0; round < 4; ++round) {
        while (auto chain = queue->pop()) {
            if (++chains > 4u * queue_size) std::abort();  // never more than the driver offered
            for (const auto* list : {&chain->readable, &chain->writable})
                for (const GuestBuffer& buffer : *list)
                    if (buffer.host < ram || buffer.host + buffer.length > ram + k_memory || buffer.length == 0)
                        std::abort();
            queue->add_used(chain->head, static_cast<uint32_t>(chain->writable_bytes));
        }
        queue->should_interrupt();
        if (!queue->enable_notifications()) break;
    }
    return 0;
}
