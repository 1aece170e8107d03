#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

/// IPv6 subnets of managed networks: parsing, the gateway's address, and the address a guest
/// takes by stateless autoconfiguration (SLAAC), which the firewall pins its port to.
namespace corral::net {

using Ipv6Address = std::array<uint8_t, 16>;

/// An IPv6 subnet: a network address with no host bits set and a prefix length 1..128.
struct Ipv6Subnet {
    Ipv6Address network{};
    int prefix = 0;

    bool contains(const Ipv6Address& address) const;
    bool overlaps(const Ipv6Subnet& other) const { return contains(other.network) || other.contains(network); }
    /// The subnet's first host address (prefix::1): the host's address on a managed bridge.
    Ipv6Address gateway() const;
    std::string to_string() const;  ///< "fd00:77::/64" (RFC 5952 form)
};

/// "fd00:1::/64" -> the subnet; nullopt when malformed, when the prefix is outside 1..128 or
/// when host bits are set.
std::optional<Ipv6Subnet> parse_ipv6_subnet(std::string_view text);
/// True for "fd00:1::/64"-style IPv6 subnets (what parse_ipv6_subnet() takes).
bool is_ipv6_subnet(std::string_view text);
std::optional<Ipv6Address> parse_ipv6(std::string_view text);
std::string format_ipv6(const Ipv6Address& address);  ///< RFC 5952 form, "fd00:77::1"

/// The address a guest with NIC `mac` ("52:54:00:12:34:56") gives itself in the /64 `subnet`
/// from a router advertisement: the prefix and the modified EUI-64 interface identifier of RFC
/// 4291 appendix A (the MAC with ff:fe in the middle and the universal/local bit flipped), which
/// Linux uses unless told to use privacy or stable-privacy addresses. nullopt for a malformed MAC
/// or a subnet that is not a /64.
std::optional<Ipv6Address> slaac_address(const Ipv6Subnet& subnet, std::string_view mac);

}  // namespace corral::net
