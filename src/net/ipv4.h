#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

/// IPv4 addresses and subnets as numbers (host byte order), for validating networks and
/// handing out addresses: parsing is strict (dotted quads, no leading zeros, no spaces).
namespace corral::net {

/// "10.0.100.1" -> 0x0a006401; nullopt for anything else.
std::optional<uint32_t> parse_ipv4(std::string_view text);
std::string format_ipv4(uint32_t address);

/// An IPv4 subnet: a network address with no host bits set and a prefix length 1..32.
struct Ipv4Subnet {
    uint32_t network = 0;
    int prefix = 0;

    uint32_t mask() const { return prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix); }
    uint32_t broadcast() const { return network | ~mask(); }
    bool contains(uint32_t address) const { return (address & mask()) == network; }
    bool overlaps(const Ipv4Subnet& other) const { return contains(other.network) || other.contains(network); }
    /// The first and last addresses a host may have (not the network or broadcast address).
    uint32_t first_host() const { return prefix >= 31 ? network : network + 1; }
    uint32_t last_host() const { return prefix >= 31 ? broadcast() : broadcast() - 1; }
    std::string to_string() const;  ///< "10.0.100.0/24"
    bool operator==(const Ipv4Subnet&) const = default;
};

/// "10.0.100.0/24" -> the subnet; nullopt when malformed, when the prefix is outside 1..32 or
/// when host bits are set ("10.0.100.1/24": the caller says which network it meant).
std::optional<Ipv4Subnet> parse_ipv4_subnet(std::string_view text);

}  // namespace corral::net

namespace corral::net {

/// A subnet the host already uses: on an interface's address or in its routing table.
struct HostSubnet {
    std::string device;
    Ipv4Subnet subnet;
};

/// The IPv4 subnets of this network namespace's interface addresses and non-default routes
/// (/proc/net/route), so a new network can avoid them.
std::vector<HostSubnet> host_ipv4_subnets();

}  // namespace corral::net
