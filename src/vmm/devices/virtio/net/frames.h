#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <expected>
#include <span>
#include <string_view>
#include <vector>

#include "vmm/devices/virtio/queue.h"

namespace corral::vmm::virtio {

/// virtio-net feature bits (virtio 1.2 §5.1.3).
constexpr uint64_t k_net_f_csum = 1ull << 0;
constexpr uint64_t k_net_f_guest_csum = 1ull << 1;
constexpr uint64_t k_net_f_mac = 1ull << 5;
constexpr uint64_t k_net_f_guest_tso4 = 1ull << 7;
constexpr uint64_t k_net_f_guest_tso6 = 1ull << 8;
constexpr uint64_t k_net_f_host_tso4 = 1ull << 11;
constexpr uint64_t k_net_f_host_tso6 = 1ull << 12;
constexpr uint64_t k_net_f_mrg_rxbuf = 1ull << 15;
constexpr uint64_t k_net_f_status = 1ull << 16;

/// virtio_net_hdr_v1 (§5.1.6): the 12 bytes in front of every frame, both directions.
struct VirtioNetHeader {
    uint8_t flags;
    uint8_t gso_type;
    uint16_t hdr_len;
    uint16_t gso_size;
    uint16_t csum_start;
    uint16_t csum_offset;
    uint16_t num_buffers;
};
static_assert(sizeof(VirtioNetHeader) == 12);
constexpr uint8_t k_net_hdr_f_needs_csum = 1;
constexpr uint8_t k_net_hdr_gso_none = 0;
constexpr uint8_t k_net_hdr_gso_tcpv4 = 1;
constexpr uint8_t k_net_hdr_gso_tcpv6 = 4;

constexpr uint32_t k_net_header_size = sizeof(VirtioNetHeader);
/// Largest frame, header excluded: 65562 - 12, the buffer size §5.1.6.3.1 asks of drivers that
/// take unsegmented TSO frames (a 64 KiB IP packet plus Ethernet and VLAN headers).
constexpr uint32_t k_net_max_frame = 65550;
constexpr uint32_t k_net_min_frame = 14;  // an Ethernet header

/// Why a TX chain was refused (each counts as tx_rejected).
enum class TxReject : uint8_t {
    TooShort,  // less than a header and an Ethernet header
    TooLong,   // more than a header and k_net_max_frame
    BadFlags,  // unknown header flags, or NEEDS_CSUM without VIRTIO_NET_F_CSUM
    BadGso,    // a GSO type that is unknown or was not negotiated
};
std::string_view describe(TxReject reject);

/// A checked TX frame: the header copied out of guest RAM (so what was checked is what the tap
/// gets) and the frame's bytes as pointers into guest RAM, in order.
struct TxFrame {
    VirtioNetHeader header{};
    std::vector<iovec> frame;  // each part lies in one of the chain's readable buffers
    uint64_t frame_bytes = 0;
};

/// Reads a TX chain (§5.1.6.2): its readable part is the header, then the frame. Bounds the size
/// before reading anything, checks the header against the negotiated `features` and zeroes
/// num_buffers. Writable buffers in the chain are ignored (nothing to say back).
std::expected<TxFrame, TxReject> parse_tx_chain(const DescriptorChain& chain, uint64_t features);

/// What became of a received frame offered to an RX chain.
enum class RxPlacement : uint8_t {
    Delivered,      // copied; the chain is used with packet.size() bytes
    ChainRejected,  // the chain cannot take any frame (no writable room for a header and an
                    // Ethernet header): the guest's fault; the frame waits for the next chain
    FrameTooBig,    // the chain is too small for this frame (no MRG_RXBUF): the frame is dropped
};

/// Copies `packet` (a header then a frame, as read from the tap) into `chain`'s writable
/// buffers, setting the header's num_buffers to 1 (one chain per frame, §5.1.6.4).
RxPlacement place_rx_frame(const DescriptorChain& chain, std::span<uint8_t> packet);

}  // namespace corral::vmm::virtio
