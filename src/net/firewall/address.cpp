#include "net/firewall/address.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>

#include <fmt/format.h>

namespace corral::net::firewall {

int Cidr::max_prefix() const { return family == AF_INET ? 32 : 128; }

bool Cidr::contains(const Cidr& address) const {
    if (address.family != family || address.prefix < prefix) return false;
    return Cidr{family, address.bytes, prefix}.network().bytes == network().bytes;
}

Cidr Cidr::network() const {
    Cidr out = *this;
    int length = family == AF_INET ? 4 : 16;
    for (int i = 0; i < length; ++i) {
        int bits = prefix - i * 8;
        uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : static_cast<uint8_t>(0xff << (8 - bits));
        out.bytes[static_cast<size_t>(i)] &= mask;
    }
    return out;
}

std::string Cidr::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(family, bytes.data(), text, sizeof text);
    std::string out = text;
    // fmt, not "/" + std::to_string(): GCC 12 -O3 reports a false -Wrestrict there (bug 105329).
    if (prefix != max_prefix()) out += fmt::format("/{}", prefix);
    return out;
}

std::optional<Cidr> parse_cidr(const std::string& text) {
    Cidr out;
    std::string address = text;
    std::optional<int> prefix;
    if (auto slash = text.find('/'); slash != std::string::npos) {
        address = text.substr(0, slash);
        int value = -1;
        const char* begin = text.data() + slash + 1;
        const char* end = text.data() + text.size();
        auto [ptr, ec] = std::from_chars(begin, end, value);
        if (ec != std::errc() || ptr != end || begin == end) return std::nullopt;
        prefix = value;
    }
    if (::inet_pton(AF_INET, address.c_str(), out.bytes.data()) == 1) {
        out.family = AF_INET;
    } else if (::inet_pton(AF_INET6, address.c_str(), out.bytes.data()) == 1) {
        out.family = AF_INET6;
    } else {
        return std::nullopt;
    }
    out.prefix = prefix.value_or(out.max_prefix());
    if (out.prefix < 0 || out.prefix > out.max_prefix()) return std::nullopt;
    return out;
}

}  // namespace corral::net::firewall
