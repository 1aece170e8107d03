#include "net/ipv4.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace corral::net {

std::optional<uint32_t> parse_ipv4(std::string_view text) {
    uint32_t address = 0;
    size_t position = 0;
    for (int part = 0; part < 4; ++part) {
        if (part > 0) {
            if (position >= text.size() || text[position] != '.') return std::nullopt;
            ++position;
        }
        size_t end = position;
        while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
        const size_t digits = end - position;
        if (digits == 0 || digits > 3 || (digits > 1 && text[position] == '0')) return std::nullopt;
        unsigned value = 0;
        std::from_chars(text.data() + position, text.data() + end, value);
        if (value > 255) return std::nullopt;
        address = address << 8 | value;
        position = end;
    }
    if (position != text.size()) return std::nullopt;
    return address;
}

std::string format_ipv4(uint32_t address) {
    return fmt::format("{}.{}.{}.{}", address >> 24, (address >> 16) & 0xff, (address >> 8) & 0xff, address & 0xff);
}

std::string Ipv4Subnet::to_string() const {
    return fmt::format("{}/{}", format_ipv4(network), prefix);
}

std::optional<Ipv4Subnet> parse_ipv4_subnet(std::string_view text) {
    const size_t slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto address = parse_ipv4(text.substr(0, slash));
    const std::string_view prefix_text = text.substr(slash + 1);
    int prefix = 0;
    auto [end, error] = std::from_chars(prefix_text.data(), prefix_text.data() + prefix_text.size(), prefix);
    if (!address || error != std::errc() || end != prefix_text.data() + prefix_text.size() || prefix_text.empty() ||
        (prefix_text.size() > 1 && prefix_text[0] == '0') || prefix < 1 || prefix > 32)
        return std::nullopt;
    Ipv4Subnet subnet{*address, prefix};
    if ((*address & subnet.mask()) != *address) return std::nullopt;
    return subnet;
}

namespace {

int prefix_of_mask(uint32_t mask) {
    int prefix = 0;
    while (prefix < 32 && (mask & (0x80000000u >> prefix))) ++prefix;
    return prefix;
}

}  // namespace

std::vector<HostSubnet> host_ipv4_subnets() {
    std::vector<HostSubnet> out;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) == 0) {
        for (ifaddrs* entry = list; entry; entry = entry->ifa_next) {
            if (!entry->ifa_addr || entry->ifa_addr->sa_family != AF_INET || !entry->ifa_netmask) continue;
            const uint32_t address = ntohl(reinterpret_cast<const sockaddr_in*>(entry->ifa_addr)->sin_addr.s_addr);
            const uint32_t mask = ntohl(reinterpret_cast<const sockaddr_in*>(entry->ifa_netmask)->sin_addr.s_addr);
            const int prefix = prefix_of_mask(mask);
            if (prefix == 0) continue;
            out.push_back({entry->ifa_name, Ipv4Subnet{address & mask, prefix}});
        }
        ::freeifaddrs(list);
    }
    // /proc/net/route: "Iface Destination Gateway Flags ... Mask ..." with addresses in
    // little-endian hex; it shows the routes of the reader's network namespace.
    std::ifstream routes("/proc/net/route");
    std::string line;
    std::getline(routes, line);  // the header
    while (std::getline(routes, line)) {
        std::istringstream fields(line);
        std::string device, destination, gateway, flags, refcnt, use, metric, mask;
        if (!(fields >> device >> destination >> gateway >> flags >> refcnt >> use >> metric >> mask)) continue;
        const uint32_t dest = ntohl(static_cast<uint32_t>(std::stoul(destination, nullptr, 16)));
        const uint32_t netmask = ntohl(static_cast<uint32_t>(std::stoul(mask, nullptr, 16)));
        const int prefix = prefix_of_mask(netmask);
        if (prefix == 0) continue;  // the default route covers everything; it takes nothing
        out.push_back({device, Ipv4Subnet{dest & netmask, prefix}});
    }
    return out;
}

}  // namespace corral::net
