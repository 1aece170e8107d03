#include "net/interface_ipv6.h"

#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "base/unique_fd.h"

namespace corral::net {
namespace {

/// The kernel's struct in6_ifreq (linux/ipv6.h, which clashes with netinet/in.h).
struct In6Ifreq {
    in6_addr address;
    uint32_t prefix;
    int ifindex;
};

/// /proc/net/if_inet6's scope field for global addresses (IPV6_ADDR_SCOPE_GLOBAL... as printed).
constexpr unsigned k_scope_global = 0x00;

Result<void> change_address(unsigned long request, unsigned ifindex, const InterfaceIpv6& entry, const char* what,
                            const std::string& name) {
    UniqueFd control(::socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    if (control.get() < 0)
        return fail_errno("opening an IPv6 socket to configure " + name);
    In6Ifreq change{};
    std::memcpy(change.address.s6_addr, entry.address.data(), entry.address.size());
    change.prefix = static_cast<uint32_t>(entry.prefix);
    change.ifindex = static_cast<int>(ifindex);
    if (::ioctl(control.get(), request, &change) != 0)
        return fail_errno(fmt::format("{} {}/{} on {}", what, format_ipv6(entry.address), entry.prefix, name));
    return {};
}

}  // namespace

Result<std::vector<InterfaceIpv6>> global_ipv6_addresses(const std::string& name) {
    // thread-self: the calling thread's network namespace (/proc/net is the process's).
    std::ifstream table("/proc/thread-self/net/if_inet6");
    if (!table)
        return std::vector<InterfaceIpv6>{};  // IPv6 is off on this host: no addresses
    std::vector<InterfaceIpv6> found;
    // "fd000077000000000000000000000001 05 40 00 80 br0": address, ifindex, prefix, scope,
    // flags and device, the numbers in hex.
    for (std::string line; std::getline(table, line);) {
        std::istringstream fields(line);
        std::string hex, device;
        unsigned ifindex = 0, prefix = 0, scope = 0, flags = 0;
        if (!(fields >> hex >> std::hex >> ifindex >> prefix >> scope >> flags >> device) || device != name ||
            hex.size() != 32 || scope != k_scope_global)
            continue;
        InterfaceIpv6 entry;
        for (size_t i = 0; i < 16; ++i)
            entry.address[i] = static_cast<uint8_t>(std::stoul(hex.substr(i * 2, 2), nullptr, 16));
        entry.prefix = static_cast<int>(prefix);
        found.push_back(entry);
    }
    return found;
}

Result<void> set_global_ipv6_address(const std::string& name, const std::optional<InterfaceIpv6>& wanted) {
    const unsigned ifindex = ::if_nametoindex(name.c_str());
    if (ifindex == 0)
        return fail_errno(fmt::format("no network device named {}", name));
    if (wanted) {
        const std::string dad = fmt::format("/proc/sys/net/ipv6/conf/{}/accept_dad", name);
        std::ofstream off(dad);
        if (!(off << "0\n") || !off.flush())
            return fail(fmt::format("turning off duplicate address detection on {} ({}): IPv6 may be disabled there",
                                    name, dad),
                        EIO);
    }
    bool present = false;
    for (const auto& entry : TRY(global_ipv6_addresses(name))) {
        if (wanted && entry == *wanted) {
            present = true;
            continue;
        }
        TRY_VOID(change_address(SIOCDIFADDR, ifindex, entry, "removing", name));
    }
    if (wanted && !present)
        TRY_VOID(change_address(SIOCSIFADDR, ifindex, *wanted, "adding", name));
    return {};
}

}  // namespace corral::net
