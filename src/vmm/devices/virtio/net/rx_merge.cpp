#include "vmm/devices/virtio/net/rx_merge.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "vmm/devices/virtio/net/frames.h"

namespace corral::vmm::virtio {

RxMergeResult MergeableRx::place(Virtqueue& queue, std::span<uint8_t> packet) {
    RxMergeResult result{RxMerge::NeedBuffers};
    if (packet.size() < k_net_header_size) {  // the tap always gives a header: a caller's bug
        result.outcome = RxMerge::Dropped;
        return result;
    }
    while (m_room < packet.size()) {
        if (m_chains.size() >= queue.size()) {
            // Every descriptor the driver has is held here and still too small: drop the packet
            // and give the chains back empty (Linux counts a buffer shorter than a header and an
            // Ethernet header as a length error and frees it).
            m_used.clear();
            for (const DescriptorChain& chain : m_chains) m_used.push_back({chain.head, 0});
            queue.add_used(m_used);  // m_chains.size() <= queue.size() elements
            reset();
            result.outcome = RxMerge::Dropped;
            return result;
        }
        std::optional<DescriptorChain> chain = queue.pop();
        if (!chain) {
            if (queue.enable_notifications()) continue;  // buffers arrived meanwhile (§2.7.10)
            return result;                               // held: wait for the driver's notification
        }
        if (chain->writable_bytes < k_net_header_size) {
            // Returned at once: none of this packet's chains is in the used ring yet, so the
            // driver never finds it between them.
            ++result.rejected;
            queue.add_used(chain->head, 0);
            continue;
        }
        m_room += chain->writable_bytes;
        m_chains.push_back(std::move(*chain));
    }
    // num_buffers (le16): the count is known now; the first chain has room for the whole
    // header, so it lands there. The tap leaves these bytes alone (§5.1.6: device-written).
    uint16_t buffers = static_cast<uint16_t>(m_chains.size());  // <= queue size <= 32768
    packet[offsetof(VirtioNetHeader, num_buffers)] = static_cast<uint8_t>(buffers & 0xff);
    packet[offsetof(VirtioNetHeader, num_buffers) + 1] = static_cast<uint8_t>(buffers >> 8);
    copy_out(packet);
    queue.add_used(m_used);  // m_chains.size() <= queue.size() elements, published once
    result.outcome = RxMerge::Delivered;
    result.buffers = buffers;
    reset();
    return result;
}

void MergeableRx::copy_out(std::span<const uint8_t> packet) {
    // The chains were popped until their room held the packet and none is empty, so each gets
    // at least one byte and the last one the rest: num_buffers counts exactly the chains used.
    m_used.clear();
    size_t done = 0;
    for (const DescriptorChain& chain : m_chains) {
        uint32_t written = 0;
        for (const GuestBuffer& buffer : chain.writable) {
            if (done == packet.size()) break;
            size_t take = std::min<size_t>(buffer.length, packet.size() - done);
            // buffer.host covers buffer.length bytes of guest RAM (checked when popped); take <= length.
            std::memcpy(buffer.host, packet.data() + done, take);
            done += take;
            written += static_cast<uint32_t>(take);
        }
        m_used.push_back({chain.head, written});
    }
}

void MergeableRx::reset() {
    m_chains.clear();
    m_room = 0;
}

}  // namespace corral::vmm::virtio
