#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "vmm/devices/virtio/queue.h"

namespace corral::vmm::virtio {

/// What became of a packet offered to MergeableRx::place().
enum class RxMerge : uint8_t {
    Delivered,    // in the guest: `buffers` chains used, the used index published once
    NeedBuffers,  // the ring ran dry first: the chains popped so far are held for this packet
    Dropped,      // the guest's chains cannot hold it even with the whole ring (tiny buffers)
};

struct RxMergeResult {
    RxMerge outcome;
    uint16_t buffers = 0;   // Delivered: the chains used (num_buffers)
    uint32_t rejected = 0;  // chains refused on the way (less than a header of writable room)
};

/// Receive with VIRTIO_NET_F_MRG_RXBUF (virtio 1.2 §5.1.6.3, §5.1.6.4): one packet spread over
/// as many RX chains as it needs, each returned used with the bytes written into it and the
/// first one's header saying how many (num_buffers). The driver then posts small buffers (a
/// page or an MTU's worth) instead of 64 KiB ones, and a small frame costs one small buffer.
///
/// A packet is published whole or not at all: its chains are popped and held until their
/// writable room holds it, then filled in order and returned with one update of the used index
/// (a driver reading num_buffers from the first must find the others already there). When the
/// ring runs dry first the held chains wait, filled with nothing yet, for the driver to post
/// more, and place() is called again with the same packet; the packet is neither dropped nor
/// cut. Guest hostility: a chain with less than a header of writable room is refused (returned
/// used with length 0, §5.1.6.3.1 "each buffer MUST be at least the size of the struct
/// virtio_net_hdr"), and when the held chains reach the queue size without holding the packet
/// (the driver can post no more: every descriptor is with us) the packet is dropped and the
/// chains returned with length 0, so a guest of tiny buffers cannot stall the device.
/// Writes go only through the chains' buffers (bounds checked when they were popped).
/// Not thread-safe: owned by the device's event loop thread.
class MergeableRx {
public:
    /// Places `packet` (a virtio_net_hdr_v1 then a frame, as read from the tap; at least a
    /// header) into `queue`'s chains, setting its header's num_buffers first.
    RxMergeResult place(Virtqueue& queue, std::span<uint8_t> packet);
    /// Forgets the held chains (device reset: the driver forgets its rings too).
    void reset();
    /// Chains held for a packet that is waiting for more buffers.
    size_t held() const { return m_chains.size(); }

private:
    void copy_out(std::span<const uint8_t> packet);

    std::vector<DescriptorChain> m_chains;
    uint64_t m_room = 0;  // writable bytes of m_chains
    std::vector<UsedElement> m_used;
};

}  // namespace corral::vmm::virtio
