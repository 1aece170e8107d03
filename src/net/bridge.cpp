#include "net/bridge.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "net/iproute2.h"

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

Result<UniqueFd> control_socket() {
    // AF_INET: the address ioctls (SIOCSIFADDR) need an inet socket; the others take any.
    UniqueFd control(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (!control.valid()) return fail_errno("opening a control socket");
    return control;
}

sockaddr_in inet_address(in_addr_t address) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = address;
    return in;
}

/// Asks the device's driver its name (ETHTOOL_GDRVINFO) rather than looking in /sys, which
/// shows the namespace that mounted it, not necessarily ours.
bool is_bridge_device(const std::string& name) {
    auto control = control_socket();
    if (!control) return false;
    ethtool_drvinfo info{};
    info.cmd = ETHTOOL_GDRVINFO;
    ifreq request = request_for(name);
    request.ifr_data = reinterpret_cast<char*>(&info);
    return ::ioctl(control->get(), SIOCETHTOOL, &request) == 0 && std::string(info.driver) == "bridge";
}

}  // namespace

std::string bridge_mac(const std::string& name) {
    // FNV-1a of the name: stable across corrald restarts and hosts, different per bridge.
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (unsigned char c : name) hash = (hash ^ c) * 0x100000001b3ULL;
    // 02: locally administered, unicast.
    return fmt::format("02:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", (hash >> 32) & 0xff, (hash >> 24) & 0xff,
                       (hash >> 16) & 0xff, (hash >> 8) & 0xff, hash & 0xff);
}

Result<void> ensure_bridge(const std::string& name) {
    TRY_VOID(check_name(name));
    // nf_call_iptables: frames between two ports of this bridge go through the inet forward hook
    // (br_netfilter, per bridge, no host-wide sysctl), where the security groups are
    // (net/firewall/firewall.h).
    const std::vector<std::string> options{"nf_call_iptables", "1", "nf_call_ip6tables", "1"};
    // A MAC of its own: a bridge without one takes its lowest port's, so a VM's tap joining with
    // a lower MAC changed the gateway's MAC under the other guests, whose ARP entries then sent
    // their DNS and traffic to the old one for tens of seconds (integration.daemon.networks saw
    // DNS time out after a guest joined).
    const std::string mac = bridge_mac(name);
    if (::if_nametoindex(name.c_str()) != 0) {
        if (!is_bridge_device(name))
            return fail(fmt::format("a network device named {} exists and is not a bridge: pick another bridge name",
                                    name),
                        EINVAL);
        std::vector<std::string> args{"link", "set", name, "address", mac, "type", "bridge"};
        args.insert(args.end(), options.begin(), options.end());
        return run_iproute2("ip", args);
    }
    std::vector<std::string> args{"link", "add", name, "address", mac, "type", "bridge"};
    args.insert(args.end(), options.begin(), options.end());
    if (auto added = run_iproute2("ip", args); !added) {
        if (::if_nametoindex(name.c_str()) != 0 && is_bridge_device(name)) return {};  // made meanwhile
        return added;
    }
    return {};
}

bool bridge_exists(const std::string& name) {
    return check_name(name) && ::if_nametoindex(name.c_str()) != 0 && is_bridge_device(name);
}

Result<void> delete_bridge(const std::string& name) {
    TRY_VOID(check_name(name));
    if (::if_nametoindex(name.c_str()) == 0) return fail(fmt::format("no bridge named {}", name), ENOENT);
    if (!is_bridge_device(name)) return fail(fmt::format("{} is a network device but not a bridge", name), EINVAL);
    UniqueFd control = TRY(control_socket());
    // The kernel refuses to delete a bridge that is up (EBUSY).
    ifreq flags = request_for(name);
    if (::ioctl(control.get(), SIOCGIFFLAGS, &flags) == 0 && (flags.ifr_flags & IFF_UP)) {
        flags.ifr_flags = static_cast<short>(flags.ifr_flags & ~IFF_UP);
        if (::ioctl(control.get(), SIOCSIFFLAGS, &flags) != 0) return fail_errno(fmt::format("setting {} down", name));
    }
    char bridge[IFNAMSIZ] = {};
    std::memcpy(bridge, name.data(), name.size());
    if (::ioctl(control.get(), SIOCBRDELBR, bridge) != 0) return fail_errno(fmt::format("deleting bridge {}", name));
    return {};
}

Result<void> set_link_up(const std::string& name) {
    TRY_VOID(check_name(name));
    UniqueFd control = TRY(control_socket());
    ifreq flags = request_for(name);
    if (::ioctl(control.get(), SIOCGIFFLAGS, &flags) != 0) return fail_errno(fmt::format("reading {}'s flags", name));
    if (flags.ifr_flags & IFF_UP) return {};
    flags.ifr_flags = static_cast<short>(flags.ifr_flags | IFF_UP);
    if (::ioctl(control.get(), SIOCSIFFLAGS, &flags) != 0) return fail_errno(fmt::format("setting {} up", name));
    return {};
}

Result<void> set_mtu(const std::string& name, int mtu) {
    TRY_VOID(check_name(name));
    if (mtu < 68 || mtu > 65535) return fail(fmt::format("MTU {} must be from 68 to 65535", mtu), EINVAL);
    UniqueFd control = TRY(control_socket());
    ifreq request = request_for(name);
    request.ifr_mtu = mtu;
    if (::ioctl(control.get(), SIOCSIFMTU, &request) != 0)
        return fail_errno(fmt::format("setting {}'s MTU to {}", name, mtu));
    return {};
}

Result<int> get_mtu(const std::string& name) {
    TRY_VOID(check_name(name));
    UniqueFd control = TRY(control_socket());
    ifreq request = request_for(name);
    if (::ioctl(control.get(), SIOCGIFMTU, &request) != 0) return fail_errno(fmt::format("reading {}'s MTU", name));
    return request.ifr_mtu;
}

Result<void> set_ipv4_address(const std::string& name, const std::string& address, int prefix_length) {
    TRY_VOID(check_name(name));
    in_addr parsed{};
    if (::inet_pton(AF_INET, address.c_str(), &parsed) != 1)
        return fail(fmt::format("'{}' is not an IPv4 address", address), EINVAL);
    if (prefix_length < 1 || prefix_length > 32)
        return fail(fmt::format("prefix length {} must be from 1 to 32", prefix_length), EINVAL);
    if (TRY(get_ipv4_address(name)) == address) {
        // Same address: only the mask may need a change (setting the address would drop routes).
    } else {
        UniqueFd control = TRY(control_socket());
        ifreq request = request_for(name);
        sockaddr_in in = inet_address(parsed.s_addr);
        std::memcpy(&request.ifr_addr, &in, sizeof(in));
        if (::ioctl(control.get(), SIOCSIFADDR, &request) != 0)
            return fail_errno(fmt::format("giving {} the address {}", name, address));
    }
    UniqueFd control = TRY(control_socket());
    ifreq request = request_for(name);
    const uint32_t mask = prefix_length == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix_length);
    sockaddr_in in = inet_address(htonl(mask));
    std::memcpy(&request.ifr_netmask, &in, sizeof(in));
    if (::ioctl(control.get(), SIOCSIFNETMASK, &request) != 0)
        return fail_errno(fmt::format("setting {}'s netmask to /{}", name, prefix_length));
    return {};
}

Result<std::string> get_ipv4_address(const std::string& name) {
    TRY_VOID(check_name(name));
    UniqueFd control = TRY(control_socket());
    ifreq request = request_for(name);
    if (::ioctl(control.get(), SIOCGIFADDR, &request) != 0) {
        if (errno == EADDRNOTAVAIL) return std::string();
        return fail_errno(fmt::format("reading {}'s address", name));
    }
    sockaddr_in in{};
    std::memcpy(&in, &request.ifr_addr, sizeof(in));
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof(text));
    return std::string(text);
}

namespace {

std::string vlan_port_name(const std::string& parent, int vlan_id) {
    std::string name = fmt::format("{}.{}", parent, vlan_id);
    if (name.size() < IFNAMSIZ) return name;
    uint32_t hash = 2166136261u;  // FNV-1a of the parent: stable, and distinct per parent
    for (unsigned char c : parent) hash = (hash ^ c) * 16777619u;
    return fmt::format("crlv{:x}.{}", hash & 0xfffff, vlan_id);
}

}  // namespace

Result<std::string> ensure_vlan_port(const std::string& parent, int vlan_id, const std::string& bridge) {
    TRY_VOID(check_name(parent));
    if (vlan_id < 1 || vlan_id > 4094) return fail(fmt::format("VLAN id {} must be from 1 to 4094", vlan_id), EINVAL);
    if (::if_nametoindex(parent.c_str()) == 0)
        return fail(fmt::format("no interface named {} (the vlan network's parent) on this host", parent), ENOENT);
    const std::string name = vlan_port_name(parent, vlan_id);
    if (::if_nametoindex(name.c_str()) == 0) {
        auto added = run_iproute2(
            "ip", {"link", "add", "link", parent, "name", name, "type", "vlan", "id", std::to_string(vlan_id)});
        if (!added)
            return fail(added.error().with_context(
                fmt::format("making VLAN {} on {} (the kernel needs the 8021q module: modprobe 8021q)", vlan_id,
                            parent)));
    }
    TRY_VOID(run_iproute2("ip", {"link", "set", name, "master", bridge, "up"}));
    return name;
}

void delete_vlan_port(const std::string& parent, int vlan_id) {
    const std::string name = vlan_port_name(parent, vlan_id);
    if (::if_nametoindex(name.c_str()) != 0)
        (void)run_iproute2("ip", {"link", "del", name});
}

}  // namespace corral::net
