#include "daemon/http/listen_address.h"

#include <arpa/inet.h>

#include <cerrno>
#include <charconv>

#include <fmt/format.h>

namespace corral::daemon {

namespace {

constexpr const char* k_allowed =
    "expected HOST:PORT with HOST an IPv4 address (127.0.0.1, 0.0.0.0), an IPv6 address in brackets "
    "([::1], [::]) or localhost, and PORT from 0 to 65535 (0: any free port)";

std::unexpected<Error> bad(std::string_view text, std::string_view why) {
    return fail(fmt::format("--listen '{}': {}; {}", text, why, k_allowed), EINVAL);
}

}  // namespace

std::string ListenAddress::to_string() const {
    return ipv6 ? fmt::format("[{}]:{}", host, port) : fmt::format("{}:{}", host, port);
}

Result<ListenAddress> parse_listen_address(std::string_view text) {
    ListenAddress address;
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos) return bad(text, "the IPv6 address has no closing ']'");
        host = text.substr(1, close - 1);
        if (close + 1 >= text.size() || text[close + 1] != ':') return bad(text, "no :PORT after the IPv6 address");
        port = text.substr(close + 2);
        address.ipv6 = true;
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos) return bad(text, "no :PORT");
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return bad(text, "an IPv6 address must be in brackets");
    }
    if (host.empty()) return bad(text, "no host");
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535)
        return bad(text, fmt::format("'{}' is not a port", port));
    address.port = static_cast<uint16_t>(value);

    const std::string host_text(host);
    unsigned char binary[16];
    if (address.ipv6) {
        if (::inet_pton(AF_INET6, host_text.c_str(), binary) != 1)
            return bad(text, fmt::format("'{}' is not an IPv6 address", host_text));
    } else if (host_text == "localhost") {
        address.host = "127.0.0.1";
        return address;
    } else if (::inet_pton(AF_INET, host_text.c_str(), binary) != 1) {
        return bad(text, fmt::format("'{}' is not an IPv4 address or localhost", host_text));
    }
    address.host = host_text;
    return address;
}

}  // namespace corral::daemon
