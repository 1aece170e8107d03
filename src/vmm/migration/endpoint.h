#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::vmm::migration {

/// Where a migration stream goes: `unix:PATH` (an absolute path) or `tcp:HOST:PORT` (a host
/// name, an IPv4 address or a bracketed IPv6 address, and a port 1-65535).
struct Endpoint {
    enum class Kind { Unix, Tcp };
    Kind kind = Kind::Unix;
    std::string path;   ///< Unix
    std::string host;   ///< Tcp, without brackets
    uint16_t port = 0;  ///< Tcp
    std::string text;   ///< as given, for messages
};

/// Parses an endpoint; the error names `field` ("--migrate-listen", "\"to\"") and the forms allowed.
Result<Endpoint> parse_endpoint(std::string_view text, std::string_view field);

/// A connected stream socket to `endpoint`. Sends and receives time out after `io_timeout`
/// (a destination that stops reading or answering fails the migration instead of hanging it).
Result<UniqueFd> connect_endpoint(const Endpoint& endpoint, std::chrono::seconds io_timeout);

/// A socket listening on `endpoint` (a unix socket path must not exist yet).
Result<UniqueFd> listen_endpoint(const Endpoint& endpoint);

/// Waits for one connection on `listener`; the connection's sends and receives time out after
/// `io_timeout`.
Result<UniqueFd> accept_one(int listener, std::chrono::seconds io_timeout);

}  // namespace corral::vmm::migration
