#pragma once

// IPv4/IPv6 addresses and CIDRs as the firewall needs them: parsed, compared, printed canonically.

#include <array>
#include <cstdint>
#include <optional>
#include <string>

namespace corral::net::firewall {

/// An address with a prefix length (a bare address has the full length: /32 or /128).
struct Cidr {
    int family = 0;  ///< AF_INET or AF_INET6
    std::array<uint8_t, 16> bytes{};
    int prefix = 0;

    /// Does this prefix contain `address` (same family)?
    bool contains(const Cidr& address) const;
    /// The network part only (host bits cleared).
    Cidr network() const;
    /// "10.0.0.0/24", or "10.0.0.5" when the prefix is the full length.
    std::string to_string() const;
    bool is_host() const { return prefix == max_prefix(); }
    int max_prefix() const;
    auto operator<=>(const Cidr&) const = default;
};

/// Parses "10.0.0.0/24", "fd00::/64", "10.0.0.5", "fd00::5"; nullopt when it is not one.
std::optional<Cidr> parse_cidr(const std::string& text);

}  // namespace corral::net::firewall
