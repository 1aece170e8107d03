#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace corral::daemon {

/// Where a TCP listener binds: `--listen HOST:PORT`.
struct ListenAddress {
    std::string host;    ///< an IP literal: "127.0.0.1", "::1", "0.0.0.0", "::"
    uint16_t port = 0;   ///< 0: any free port (the one chosen is logged and shown by GET /host)
    bool ipv6 = false;

    /// "127.0.0.1:8443" or "[::1]:8443".
    std::string to_string() const;
    bool operator==(const ListenAddress&) const = default;
};

/// Parses `--listen` values: `IPv4:PORT`, `[IPv6]:PORT` or `localhost:PORT` (= 127.0.0.1), PORT
/// from 0 to 65535. Host names other than localhost are refused (a daemon should not depend on
/// DNS to decide where it listens). The error (EINVAL) names the flag and what is allowed.
Result<ListenAddress> parse_listen_address(std::string_view text);

}  // namespace corral::daemon
