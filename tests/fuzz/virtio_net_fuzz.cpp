// libFuzzer target for virtio-net's data path in guest memory: the input is a guest's memory
// image (see virtio_fuzz_layout.h) with a TX ring (ring 0) and an RX ring (ring 1) the fuzzer
// built. Every TX chain goes through parse_tx_chain (header copy and checks, frame bounds)
// and every RX chain gets a frame from the "tap" through place_rx_frame, or, when the control
// byte negotiates VIRTIO_NET_F_MRG_RXBUF, frames are spread over as many RX chains as they need
// through MergeableRx (and once the ring runs dry the driver "posts" its ring again, so a held
// packet is resumed). TX frames must lie in the chain's readable buffers and match its size; RX
// copies must fit the chain and put the frame there byte for byte; a merged packet must be
// published whole (used lengths adding up to it, num_buffers entries) or not at all; nothing
// may touch memory outside guest RAM or the frame.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "fuzz_check.h"
#include "virtio_fuzz_layout.h"
#include "vmm/devices/virtio/net/frames.h"
#include "vmm/devices/virtio/net/rx_merge.h"
#include "vmm/devices/virtio/queue.h"
#include "vmm/memory/guest_memory.h"

namespace {

using namespace corral::vmm;
using namespace corral::vmm::virtio;
using namespace corral::fuzz::virtio_layout;

/// Whether [pointer, pointer + length) lies inside one of `buffers`.
bool inside(const uint8_t* pointer, size_t length, const std::vector<GuestBuffer>& buffers) {
    for (const GuestBuffer& buffer : buffers)
        if (pointer >= buffer.host && pointer + length <= buffer.host + buffer.length) return true;
    return false;
}

void check_transmit(const DescriptorChain& chain, uint64_t features) {
    auto frame = parse_tx_chain(chain, features);
    if (!frame) return;
    uint64_t total = 0;
    volatile uint8_t sink = 0;
    for (const iovec& part : frame->frame) {
        auto* base = static_cast<const uint8_t*>(part.iov_base);
        FUZZ_CHECK(part.iov_len > 0 && inside(base, part.iov_len, chain.readable));
        sink = sink + base[0] + base[part.iov_len - 1];  // what the tap's writev would read
        total += part.iov_len;
    }
    FUZZ_CHECK(total == frame->frame_bytes && total + k_net_header_size == chain.readable_bytes);
    FUZZ_CHECK(total >= k_net_min_frame && total <= k_net_max_frame);
    const VirtioNetHeader& header = frame->header;
    FUZZ_CHECK(header.num_buffers == 0);
    FUZZ_CHECK(!(header.flags & k_net_hdr_f_needs_csum) || (features & k_net_f_csum));
    FUZZ_CHECK(header.gso_type != k_net_hdr_gso_tcpv4 || (features & k_net_f_host_tso4));
}

void check_receive(const DescriptorChain& chain, size_t frame_length) {
    std::vector<uint8_t> packet(k_net_header_size + frame_length);
    for (size_t i = 0; i < packet.size(); ++i) packet[i] = static_cast<uint8_t>(i * 13 + 1);
    switch (place_rx_frame(chain, packet)) {
        case RxPlacement::ChainRejected:
            FUZZ_CHECK(chain.writable_bytes < k_net_header_size + k_net_min_frame);
            return;
        case RxPlacement::FrameTooBig:
            FUZZ_CHECK(chain.writable_bytes < packet.size());
            return;
        case RxPlacement::Delivered: break;
    }
    FUZZ_CHECK(packet.size() <= chain.writable_bytes);
    FUZZ_CHECK(packet[10] == 1 && packet[11] == 0);  // num_buffers = 1
    // The guest's buffers hold the packet, in order (later buffers may overlap earlier ones:
    // a hostile guest may do that, so compare only where no later buffer wrote).
    size_t done = 0;
    for (size_t i = 0; i < chain.writable.size() && done < packet.size(); ++i) {
        const GuestBuffer& buffer = chain.writable[i];
        size_t take = std::min<size_t>(buffer.length, packet.size() - done);
        bool overlapped = false;
        for (size_t j = i + 1; j < chain.writable.size(); ++j) {
            const GuestBuffer& other = chain.writable[j];
            overlapped |= other.host < buffer.host + take && buffer.host < other.host + other.length;
        }
        FUZZ_CHECK(overlapped || std::memcmp(buffer.host, packet.data() + done, take) == 0);
        done += take;
    }
}

/// (head, written) of used ring 1's entry `index`.
std::pair<uint32_t, uint32_t> used_entry(const GuestMemory& memory, uint16_t size, uint16_t index) {
    uint64_t at = k_ring1_used + 4 + 8ull * (index % size);
    return {memory.read_object<uint32_t>(at).value(), memory.read_object<uint32_t>(at + 4).value()};
}

uint16_t used_index(const GuestMemory& memory) { return memory.read_object<uint16_t>(k_ring1_used + 2).value(); }

/// Mergeable receive: frames into the RX ring until it runs dry twice (the driver re-posts its
/// ring once in between: the avail index moves on by a ring's worth).
void check_merged_receive(const GuestMemory& memory, Virtqueue& rx, size_t first_frame) {
    static constexpr size_t k_frame_lengths[] = {k_net_min_frame, 60, 1514, 9000, k_net_max_frame};
    MergeableRx merge;
    bool reposted = false;
    for (size_t frame = first_frame, offered = 0; offered < 64; ++offered) {
        size_t length = k_frame_lengths[frame % std::size(k_frame_lengths)];
        std::vector<uint8_t> packet(k_net_header_size + length);
        for (size_t i = 0; i < packet.size(); ++i) packet[i] = static_cast<uint8_t>(i * 13 + 1);
        uint16_t used_before = used_index(memory);
        uint64_t rejected_before = rx.counters().rejected_chains;
        size_t held_before = merge.held();
        RxMergeResult result = merge.place(rx, packet);
        // Chains the queue refused (malformed) or the merge refused (no room for a header) come
        // first, returned with length 0.
        uint16_t refused = static_cast<uint16_t>(rx.counters().rejected_chains - rejected_before + result.rejected);
        uint16_t published = static_cast<uint16_t>(used_index(memory) - used_before);
        FUZZ_CHECK(merge.held() <= rx.size());
        switch (result.outcome) {
            case RxMerge::NeedBuffers:
                FUZZ_CHECK(published == refused);
                FUZZ_CHECK(merge.held() >= held_before);
                if (reposted || rx.broken()) return;
                // The driver posts its ring again (the same entries: a hostile driver may).
                reposted = true;
                memory.write_object<uint16_t>(k_ring1_avail + 2,
                                              static_cast<uint16_t>(rx.next_avail() + rx.size())).value();
                continue;
            case RxMerge::Dropped: {
                FUZZ_CHECK(published > refused && published - refused <= rx.size());
                for (uint16_t i = refused; i < published; ++i)
                    FUZZ_CHECK(used_entry(memory, rx.size(), static_cast<uint16_t>(used_before + i)).second == 0);
                FUZZ_CHECK(merge.held() == 0);
                break;
            }
            case RxMerge::Delivered: {
                FUZZ_CHECK(result.buffers >= 1 && published == refused + result.buffers);
                FUZZ_CHECK(packet[10] == (result.buffers & 0xff) && packet[11] == (result.buffers >> 8));
                uint64_t total = 0;
                for (uint16_t i = refused; i < published; ++i) {
                    auto [head, written] = used_entry(memory, rx.size(), static_cast<uint16_t>(used_before + i));
                    FUZZ_CHECK(head < rx.size() && written > 0);
                    total += written;
                }
                FUZZ_CHECK(total == packet.size());
                FUZZ_CHECK(merge.held() == 0);
                break;
            }
        }
        ++frame;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static GuestMemory memory = GuestMemory::create(k_memory).value();
    if (size < k_prefix) return 0;
    uint8_t* ram = memory.host_pointer(0, k_memory);
    std::memset(ram, 0, k_memory);
    std::memcpy(ram, data + k_prefix, std::min<size_t>(size - k_prefix, k_memory));
    // Control byte: ring features (bits 0-1), then the offloads the driver negotiated.
    QueueFeatures ring{.indirect_descriptors = (data[0] & 1) != 0, .event_index = (data[0] & 2) != 0};
    uint64_t features = k_net_f_mac;
    if (data[0] & 4) features |= k_net_f_csum;
    if (data[0] & 8) features |= k_net_f_host_tso4;
    if (data[0] & 16) features |= k_net_f_host_tso6;
    bool mergeable = (data[0] & 32) != 0;  // VIRTIO_NET_F_MRG_RXBUF
    uint16_t size_each = queue_size(data[1]);

    auto tx = Virtqueue::create(memory, {size_each, k_ring0_descriptors, k_ring0_avail, k_ring0_used}, ring);
    auto rx = Virtqueue::create(memory, {size_each, k_ring1_descriptors, k_ring1_avail, k_ring1_used}, ring);
    FUZZ_CHECK(tx && rx);  // the layouts are valid by construction
    while (auto chain = tx->pop()) {
        check_transmit(*chain, features);
        tx->add_used(chain->head, 0);
    }
    // Frames from the tap: the smallest, typical, jumbo and the largest there is.
    static constexpr size_t k_frame_lengths[] = {k_net_min_frame, 60, 1514, 9000, k_net_max_frame};
    size_t frame = data[1] / 9;
    if (mergeable) {
        check_merged_receive(memory, *rx, frame);
        return 0;
    }
    while (auto chain = rx->pop()) {
        check_receive(*chain, k_frame_lengths[frame++ % std::size(k_frame_lengths)]);
        rx->add_used(chain->head, 0);
    }
    return 0;
}
