#pragma once

// A tap in a network namespace of the test's own (CONVENTIONS: own network namespaces), with a
// packet socket on it standing for "the rest of the host": what the socket sends, the tap's
// reader receives, and what is written to the tap, the socket receives. Needs root
// (CAP_NET_ADMIN/CAP_SYS_ADMIN); skip_reason() says why it cannot run.

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "net/tap.h"

namespace corral::net::testing {

inline std::optional<std::string> netns_skip_reason() {
    if (::geteuid() != 0) return "needs root to create a network namespace and a tap";
    if (::access("/dev/net/tun", R_OK | W_OK) != 0) return "no usable /dev/net/tun";
    return std::nullopt;
}

/// Created on the calling thread, which is moved into a fresh network namespace for the setup
/// and moved back before the constructor returns; the fds keep working from any namespace.
class NamespacedTap {
public:
    explicit NamespacedTap(const std::string& name = "ctest0") {
        UniqueFd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
        if (!home.valid() || ::unshare(CLONE_NEWNET) != 0) {
            error = std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno);
            return;
        }
        setup(name);
        ::setns(home.get(), CLONE_NEWNET);
    }

    /// Sends a frame out of the tap's interface (the tap's reader gets it).
    bool send(const std::vector<uint8_t>& frame) const {
        return ::send(packet.get(), frame.data(), frame.size(), 0) == static_cast<ssize_t>(frame.size());
    }
    /// The next frame that came in through the tap (written by the tap's owner), or nullopt.
    std::optional<std::vector<uint8_t>> receive(int timeout_ms = 2000) const {
        for (;;) {
            pollfd p{packet.get(), POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
            std::vector<uint8_t> frame(70000);
            sockaddr_ll from{};
            socklen_t length = sizeof from;
            ssize_t n = ::recvfrom(packet.get(), frame.data(), frame.size(), 0, reinterpret_cast<sockaddr*>(&from),
                                   &length);
            if (n < 0) return std::nullopt;
            if (from.sll_pkttype == PACKET_OUTGOING) continue;  // our own sends
            frame.resize(static_cast<size_t>(n));
            return frame;
        }
    }

    std::optional<Tap> tap;
    UniqueFd packet;
    std::string error;

private:
    void setup(const std::string& name) {
        // No IPv6 autoconfiguration chatter (router solicitations) out of the tap.
        if (int fd = ::open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY); fd >= 0) {
            [[maybe_unused]] ssize_t n = ::write(fd, "1", 1);
            ::close(fd);
        }
        auto opened = Tap::open(name);
        if (!opened) {
            error = opened.error().describe();
            return;
        }
        tap.emplace(std::move(*opened));
        UniqueFd control(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        ifreq request{};
        std::strncpy(request.ifr_name, name.c_str(), IFNAMSIZ - 1);
        if (::ioctl(control.get(), SIOCGIFFLAGS, &request) < 0) {
            error = "SIOCGIFFLAGS failed";
            return;
        }
        request.ifr_flags |= IFF_UP;
        if (::ioctl(control.get(), SIOCSIFFLAGS, &request) < 0) {
            error = "cannot bring the tap up";
            return;
        }
        packet = UniqueFd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
        sockaddr_ll address{};
        address.sll_family = AF_PACKET;
        address.sll_protocol = htons(ETH_P_ALL);
        address.sll_ifindex = static_cast<int>(::if_nametoindex(name.c_str()));
        if (!packet.valid() || ::bind(packet.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) < 0)
            error = "cannot bind a packet socket to the tap";
    }
};

/// A test Ethernet frame of `length` bytes: broadcast destination, a locally administered
/// source, the local experimental EtherType 0x88b5, then a counting pattern.
inline std::vector<uint8_t> test_frame(size_t length, uint8_t seed = 0) {
    std::vector<uint8_t> frame(length);
    for (size_t i = 0; i < 6; ++i) frame[i] = 0xff;
    const uint8_t source[6] = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};
    std::memcpy(frame.data() + 6, source, 6);
    frame[12] = 0x88;
    frame[13] = 0xb5;
    for (size_t i = 14; i < length; ++i) frame[i] = static_cast<uint8_t>(i + seed);
    return frame;
}

}  // namespace corral::net::testing
