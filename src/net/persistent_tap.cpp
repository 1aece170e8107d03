#include "net/persistent_tap.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include <fmt/format.h>

#include "base/unique_fd.h"

namespace corral::net {
namespace {

Result<void> check_name(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ || name.find('/') != std::string::npos)
        return fail(fmt::format("network device name '{}' must be 1 to {} characters without '/'", name, IFNAMSIZ - 1),
                    EINVAL);
    return {};
}

ifreq request_for(const std::string& name) {
    ifreq request{};
    std::memcpy(request.ifr_name, name.data(), name.size());
    return request;
}

Result<UniqueFd> attach_tun(const std::string& name, short flags) {
    UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_CLOEXEC));
    if (!fd.valid()) return fail_errno("opening /dev/net/tun");
    ifreq request = request_for(name);
    request.ifr_flags = flags;
    if (::ioctl(fd.get(), TUNSETIFF, &request) != 0) return fail_errno(fmt::format("attaching to tap {}", name));
    return fd;
}

}  // namespace

bool is_bridge(const std::string& name) {
    struct stat info {};
    return check_name(name) && ::stat(fmt::format("/sys/class/net/{}/bridge", name).c_str(), &info) == 0;
}

Result<void> create_persistent_tap(const std::string& name) {
    TRY_VOID(check_name(name));
    if (::if_nametoindex(name.c_str()) != 0)
        return fail(fmt::format("a network device named {} already exists", name), EEXIST);
    auto fd = TRY(attach_tun(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR));
    // An ownerless tap may be attached by anyone who can open /dev/net/tun (0666 on Debian):
    // owned by us, only we (or CAP_NET_ADMIN) can, until the VM's monitor holds it.
    if (::ioctl(fd.get(), TUNSETOWNER, static_cast<unsigned long>(::geteuid())) != 0)
        return fail_errno(fmt::format("making uid {} the owner of tap {}", ::geteuid(), name));
    if (::ioctl(fd.get(), TUNSETPERSIST, 1) != 0) return fail_errno(fmt::format("making tap {} persistent", name));
    return {};
}

Result<void> delete_persistent_tap(const std::string& name) {
    TRY_VOID(check_name(name));
    if (::if_nametoindex(name.c_str()) == 0) return fail(fmt::format("no network device named {}", name), ENOENT);
    auto fd = TRY(attach_tun(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR));
    if (::ioctl(fd.get(), TUNSETPERSIST, 0) != 0) return fail_errno(fmt::format("removing tap {}", name));
    return {};
}

Result<UniqueFd> open_tap(const std::string& name) {
    TRY_VOID(check_name(name));
    if (::if_nametoindex(name.c_str()) == 0) return fail(fmt::format("no network device named {}", name), ENOENT);
    return attach_tun(name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
}

Result<void> set_tap_owner(const std::string& name, uid_t uid, gid_t gid) {
    auto fd = TRY(open_tap(name));
    if (::ioctl(fd.get(), TUNSETOWNER, static_cast<unsigned long>(uid)) != 0)
        return fail_errno(fmt::format("making uid {} the owner of tap {}", uid, name));
    if (::ioctl(fd.get(), TUNSETGROUP, static_cast<unsigned long>(gid)) != 0)
        return fail_errno(fmt::format("making gid {} the group of tap {}", gid, name));
    return {};
}

Result<void> attach_to_bridge(const std::string& device, const std::string& bridge) {
    TRY_VOID(check_name(device));
    TRY_VOID(check_name(bridge));
    if (::if_nametoindex(bridge.c_str()) == 0) return fail(fmt::format("no bridge named {} on this host", bridge), ENOENT);
    if (!is_bridge(bridge)) return fail(fmt::format("{} is a network device but not a bridge", bridge), EINVAL);
    unsigned index = ::if_nametoindex(device.c_str());
    if (index == 0) return fail(fmt::format("no network device named {}", device), ENOENT);
    UniqueFd control(::socket(AF_LOCAL, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!control.valid()) return fail_errno("opening a control socket");
    ifreq request = request_for(bridge);
    request.ifr_ifindex = static_cast<int>(index);
    if (::ioctl(control.get(), SIOCBRADDIF, &request) != 0)
        return fail_errno(fmt::format("adding {} to bridge {}", device, bridge));
    ifreq up = request_for(device);
    if (::ioctl(control.get(), SIOCGIFFLAGS, &up) != 0) return fail_errno(fmt::format("reading {}'s flags", device));
    up.ifr_flags = static_cast<short>(up.ifr_flags | IFF_UP);
    if (::ioctl(control.get(), SIOCSIFFLAGS, &up) != 0) return fail_errno(fmt::format("setting {} up", device));
    return {};
}

}  // namespace corral::net
