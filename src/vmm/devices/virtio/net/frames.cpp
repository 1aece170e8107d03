#include "vmm/devices/virtio/net/frames.h"

#include <algorithm>
#include <cstring>

namespace corral::vmm::virtio {

std::string_view describe(TxReject reject) {
    switch (reject) {
        case TxReject::TooShort: return "shorter than a header and an Ethernet header";
        case TxReject::TooLong: return "longer than the largest frame";
        case TxReject::BadFlags: return "header flags not allowed";
        case TxReject::BadGso: return "GSO type not negotiated";
    }
    return "unknown";
}

std::expected<TxFrame, TxReject> parse_tx_chain(const DescriptorChain& chain, uint64_t features) {
    // Guest-controlled sizes, bounded before anything is read.
    if (chain.readable_bytes < k_net_header_size + k_net_min_frame) return std::unexpected(TxReject::TooShort);
    if (chain.readable_bytes > k_net_header_size + k_net_max_frame) return std::unexpected(TxReject::TooLong);

    // Copy the header out (it may span descriptors); the guest cannot change it after the check.
    TxFrame tx;
    auto* header_bytes = reinterpret_cast<uint8_t*>(&tx.header);
    size_t copied = 0, buffer_index = 0, buffer_offset = 0;
    while (copied < k_net_header_size) {
        // readable_bytes >= the header size, so the buffers hold it; none has length 0.
        const GuestBuffer& buffer = chain.readable[buffer_index];
        size_t take = std::min<size_t>(buffer.length, k_net_header_size - copied);
        // buffer.host covers buffer.length bytes of guest RAM (checked when the chain was popped).
        std::memcpy(header_bytes + copied, buffer.host, take);
        copied += take;
        if (take == buffer.length) ++buffer_index;
        else buffer_offset = take;
    }
    // §5.1.6.2: NEEDS_CSUM only with CSUM; GSO types only as negotiated; no ECN, no UFO.
    const VirtioNetHeader& header = tx.header;
    if (header.flags & ~k_net_hdr_f_needs_csum) return std::unexpected(TxReject::BadFlags);
    if ((header.flags & k_net_hdr_f_needs_csum) && !(features & k_net_f_csum))
        return std::unexpected(TxReject::BadFlags);
    switch (header.gso_type) {
        case k_net_hdr_gso_none: break;
        case k_net_hdr_gso_tcpv4:
            if (!(features & k_net_f_host_tso4)) return std::unexpected(TxReject::BadGso);
            break;
        case k_net_hdr_gso_tcpv6:
            if (!(features & k_net_f_host_tso6)) return std::unexpected(TxReject::BadGso);
            break;
        default: return std::unexpected(TxReject::BadGso);
    }
    tx.header.num_buffers = 0;

    // At most queue-size parts: the queue bounds the chain's length.
    tx.frame.reserve(chain.readable.size() - buffer_index);
    for (size_t i = buffer_index; i < chain.readable.size(); ++i) {
        const GuestBuffer& buffer = chain.readable[i];
        size_t skip = i == buffer_index ? buffer_offset : 0;  // < buffer.length
        tx.frame.push_back({buffer.host + skip, buffer.length - skip});
    }
    tx.frame_bytes = chain.readable_bytes - k_net_header_size;
    return tx;
}

RxPlacement place_rx_frame(const DescriptorChain& chain, std::span<uint8_t> packet) {
    if (chain.writable_bytes < k_net_header_size + k_net_min_frame) return RxPlacement::ChainRejected;
    if (chain.writable_bytes < packet.size()) return RxPlacement::FrameTooBig;
    if (packet.size() >= k_net_header_size) {
        packet[10] = 1;  // num_buffers (le16): one chain per frame; the tap leaves these bytes alone
        packet[11] = 0;
    }
    size_t done = 0;
    for (const GuestBuffer& buffer : chain.writable) {
        if (done == packet.size()) break;
        size_t take = std::min<size_t>(buffer.length, packet.size() - done);
        // buffer.host covers buffer.length bytes of guest RAM (checked when popped); take <= length.
        std::memcpy(buffer.host, packet.data() + done, take);
        done += take;
    }
    return RxPlacement::Delivered;
}

}  // namespace corral::vmm::virtio
