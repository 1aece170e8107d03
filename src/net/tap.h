#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::net {

/// Offloads a tap may hand to its reader (TUNSETOFFLOAD): frames with a partial checksum
/// (csum) and unsegmented TCP over IPv4/IPv6 (tso4/tso6, which need csum). UFO is not offered:
/// Linux no longer accepts TUN_F_UFO alone and the virtio side does not use it.
struct TapOffloads {
    bool csum = false;
    bool tso4 = false;
    bool tso6 = false;
    bool operator==(const TapOffloads&) const = default;
};

/// A tap device opened for a virtio-net backend: an Ethernet frame per read()/write(), each
/// preceded by a 12-byte virtio_net_hdr_v1 (IFF_VNET_HDR with TUNSETVNETHDRSZ 12), fd
/// non-blocking. Owns the fd; a tap that is not persistent disappears when it is closed.
class Tap {
public:
    /// Size of the header in front of every frame (struct virtio_net_hdr_v1, virtio 1.2 §5.1.6).
    static constexpr size_t k_vnet_header_size = 12;

    /// Attaches to the tap interface `name` through /dev/net/tun (TUNSETIFF with IFF_TAP |
    /// IFF_NO_PI | IFF_VNET_HDR). With CAP_NET_ADMIN a missing tap is created (and vanishes with
    /// the fd); without it the tap must exist and belong to this user.
    static Result<Tap> open(const std::string& name);
    /// Takes over an fd inherited from the parent (`--net fd=N`): it must be an open tap queue
    /// with IFF_TAP, IFF_NO_PI and IFF_VNET_HDR set (checked with TUNGETIFF).
    static Result<Tap> adopt(int fd);

    Tap(Tap&&) noexcept = default;
    Tap& operator=(Tap&&) noexcept = default;

    int fd() const { return m_fd.get(); }
    /// The interface name (as the kernel reports it).
    const std::string& name() const { return m_name; }
    /// What TUNSETOFFLOAD accepted when the tap was opened (probed, then reset to none).
    TapOffloads supported_offloads() const { return m_supported; }
    /// Tells the kernel which offloaded frames this reader can take; must be a subset of
    /// supported_offloads().
    Result<void> set_offloads(TapOffloads offloads);
    /// Reads one frame (header included) into `buffer`; 0 when none is waiting. A frame longer
    /// than the buffer is truncated by the kernel, so size the buffer for the largest frame.
    Result<size_t> read(std::span<uint8_t> buffer);
    /// Writes one frame (header included) gathered from `parts`.
    Result<size_t> write(std::span<const iovec> parts);

private:
    Tap(UniqueFd fd, std::string name) : m_fd(std::move(fd)), m_name(std::move(name)) {}
    Result<void> configure();

    UniqueFd m_fd;
    std::string m_name;
    TapOffloads m_supported;
};

}  // namespace corral::net
