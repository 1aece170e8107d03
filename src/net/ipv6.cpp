#include "net/ipv6.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace corral::net {

bool Ipv6Subnet::contains(const Ipv6Address& address) const {
    for (int bit = 0; bit < prefix; ++bit) {
        const uint8_t mask = static_cast<uint8_t>(0x80 >> (bit % 8));
        if ((address[bit / 8] & mask) != (network[bit / 8] & mask))
            return false;
    }
    return true;
}

Ipv6Address Ipv6Subnet::gateway() const {
    Ipv6Address address = network;
    address[15] |= 1;
    return address;
}

std::string Ipv6Subnet::to_string() const {
    return fmt::format("{}/{}", format_ipv6(network), prefix);
}

std::optional<Ipv6Address> parse_ipv6(std::string_view text) {
    const std::string copy(text);
    in6_addr parsed{};
    if (::inet_pton(AF_INET6, copy.c_str(), &parsed) != 1)
        return std::nullopt;
    Ipv6Address address;
    std::memcpy(address.data(), parsed.s6_addr, address.size());
    return address;
}

std::string format_ipv6(const Ipv6Address& address) {
    in6_addr raw{};
    std::memcpy(raw.s6_addr, address.data(), address.size());
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET6, &raw, text, sizeof text);  // glibc prints the RFC 5952 form
    return text;
}

std::optional<Ipv6Subnet> parse_ipv6_subnet(std::string_view text) {
    const size_t slash = text.find('/');
    if (slash == std::string_view::npos)
        return std::nullopt;
    auto address = parse_ipv6(text.substr(0, slash));
    const std::string_view prefix_text = text.substr(slash + 1);
    int prefix = 0;
    auto [end, error] = std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix);
    if (!address || error != std::errc() || end != prefix_text.data() + prefix_text.size() || prefix_text.empty() ||
        (prefix_text.size() > 1 && prefix_text[0] == '0') || prefix < 1 || prefix > 128)
        return std::nullopt;
    for (int bit = prefix; bit < 128; ++bit)
        if ((*address)[bit / 8] & (0x80 >> (bit % 8)))
            return std::nullopt;
    return Ipv6Subnet{*address, prefix};
}

bool is_ipv6_subnet(std::string_view text) {
    return parse_ipv6_subnet(text).has_value();
}

std::optional<Ipv6Address> slaac_address(const Ipv6Subnet& subnet, std::string_view mac) {
    if (subnet.prefix != 64 || mac.size() != 17)
        return std::nullopt;
    uint8_t bytes[6];
    for (size_t i = 0; i < 6; ++i) {
        if (i > 0 && mac[i * 3 - 1] != ':')
            return std::nullopt;
        auto [end, error] = std::from_chars(mac.data() + i * 3, mac.data() + i * 3 + 2, bytes[i], 16);
        if (error != std::errc() || end != mac.data() + i * 3 + 2)
            return std::nullopt;
    }
    Ipv6Address address = subnet.network;
    const uint8_t identifier[8] = {
        static_cast<uint8_t>(bytes[0] ^ 0x02), bytes[1], bytes[2], 0xff, 0xfe, bytes[3], bytes[4], bytes[5]};
    std::memcpy(address.data() + 8, identifier, sizeof identifier);
    return address;
}

}  // namespace corral::net
