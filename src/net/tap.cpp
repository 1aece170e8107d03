#include "net/tap.h"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include <fmt/format.h>

namespace corral::net {
namespace {

unsigned offload_flags(TapOffloads offloads) {
    unsigned flags = 0;
    if (offloads.csum) flags |= TUN_F_CSUM;
    if (offloads.tso4) flags |= TUN_F_TSO4;
    if (offloads.tso6) flags |= TUN_F_TSO6;
    return flags;
}

}  // namespace

Result<Tap> Tap::open(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ)
        return fail(fmt::format("tap name '{}' must be 1 to {} characters", name, IFNAMSIZ - 1));
    UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK));
    if (!fd.valid()) return fail_errno("cannot open /dev/net/tun");
    ifreq request{};
    std::memcpy(request.ifr_name, name.data(), name.size());
    request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (::ioctl(fd.get(), TUNSETIFF, &request) < 0)
        return fail_errno(fmt::format("cannot attach to tap '{}' (TUNSETIFF)", name));
    Tap tap(std::move(fd), std::string(request.ifr_name, strnlen(request.ifr_name, IFNAMSIZ)));
    TRY_VOID(tap.configure());
    return tap;
}

Result<Tap> Tap::adopt(int raw_fd) {
    if (raw_fd < 0) return fail(fmt::format("fd={} is not a file descriptor", raw_fd));
    if (::fcntl(raw_fd, F_GETFD) < 0) return fail_errno(fmt::format("fd={} is not open", raw_fd));
    ifreq request{};
    if (::ioctl(raw_fd, TUNGETIFF, &request) < 0)
        return fail_errno(fmt::format("fd={} is not a tap device (TUNGETIFF)", raw_fd));
    int want = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if ((request.ifr_flags & want) != want)
        return fail(fmt::format("fd={} (tap '{}') must be opened with IFF_TAP, IFF_NO_PI and IFF_VNET_HDR",
                                raw_fd, std::string(request.ifr_name, strnlen(request.ifr_name, IFNAMSIZ))));
    // Only now take ownership: an fd that failed the checks stays the caller's.
    Tap tap(UniqueFd(raw_fd), std::string(request.ifr_name, strnlen(request.ifr_name, IFNAMSIZ)));
    int flags = ::fcntl(raw_fd, F_GETFL);
    if (flags < 0 || ::fcntl(raw_fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return fail_errno(fmt::format("fd={}: cannot make it non-blocking", raw_fd));
    ::fcntl(raw_fd, F_SETFD, FD_CLOEXEC);
    TRY_VOID(tap.configure());
    return tap;
}

Result<void> Tap::configure() {
    int header_size = static_cast<int>(k_vnet_header_size);
    if (::ioctl(fd(), TUNSETVNETHDRSZ, &header_size) < 0)
        return fail_errno(fmt::format("tap '{}': cannot set the vnet header size (TUNSETVNETHDRSZ)", m_name));
    // Probe: the widest set first, then checksum alone. Reset to none until a driver negotiates.
    if (::ioctl(fd(), TUNSETOFFLOAD, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6) == 0)
        m_supported = {true, true, true};
    else if (::ioctl(fd(), TUNSETOFFLOAD, TUN_F_CSUM) == 0)
        m_supported = {true, false, false};
    return set_offloads({});
}

Result<void> Tap::set_offloads(TapOffloads offloads) {
    if ((offloads.csum && !m_supported.csum) || (offloads.tso4 && !m_supported.tso4) ||
        (offloads.tso6 && !m_supported.tso6))
        return fail(fmt::format("tap '{}': offload not supported", m_name));
    if (::ioctl(fd(), TUNSETOFFLOAD, offload_flags(offloads)) < 0)
        return fail_errno(fmt::format("tap '{}': TUNSETOFFLOAD", m_name));
    return {};
}

Result<size_t> Tap::read(std::span<uint8_t> buffer) {
    for (;;) {
        ssize_t n = ::read(fd(), buffer.data(), buffer.size());
        if (n >= 0) return static_cast<size_t>(n);
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return 0;
        return fail_errno(fmt::format("tap '{}': read", m_name));
    }
}

Result<size_t> Tap::write(std::span<const iovec> parts) {
    if (parts.size() > IOV_MAX) return fail(fmt::format("tap '{}': frame in too many parts", m_name));
    for (;;) {
        ssize_t n = ::writev(fd(), parts.data(), static_cast<int>(parts.size()));
        if (n >= 0) return static_cast<size_t>(n);
        if (errno == EINTR) continue;
        return fail_errno(fmt::format("tap '{}': write", m_name));
    }
}

}  // namespace corral::net
