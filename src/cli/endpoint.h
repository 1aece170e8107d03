#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace corral::cli {

/// A corrald on another host (or port): HTTPS and WSS to its --listen port, with a bearer token.
struct RemoteEndpoint {
    std::string host;         ///< a name or an IP literal (IPv6 without brackets)
    uint16_t port = 8443;
    std::string token;
    std::string ca_cert;      ///< --ca-cert: verify the certificate against this CA file ("" = none)
    std::string fingerprint;  ///< --fingerprint: the pinned SHA-256, "AB:CD:..." ("" = none)
    /// A request's whole exchange (TLS handshake to answer) must end within this, or the
    /// connection is cut and the call fails saying so (0 = no limit: the CLI waits as long as
    /// corrald works; corrald calling another corrald must not hang).
    std::chrono::seconds answer_timeout{0};

    /// "https://host:port" ("https://[::1]:8443" for IPv6).
    std::string url() const;
    bool operator==(const RemoteEndpoint&) const = default;
};

/// Where corral sends its requests: corrald's unix socket, or a remote corrald.
struct Endpoint {
    std::string socket_path;               ///< used when `remote` is empty
    std::optional<RemoteEndpoint> remote;

    /// The socket path or the URL, for messages.
    std::string describe() const { return remote ? remote->url() : socket_path; }
};

/// The command line's say in where to connect (each empty when not given).
struct EndpointFlags {
    std::optional<std::string> socket;
    std::optional<std::string> remote;
    std::optional<std::string> token;
    std::optional<std::string> ca_cert;
    std::optional<std::string> fingerprint;
    std::optional<std::string> token_file;  ///< --token-file: the token's file (not in `ps`)
};

/// The environment's say: CORRAL_SOCKET, CORRAL_REMOTE, CORRAL_TOKEN, CORRAL_CA_CERT,
/// CORRAL_FINGERPRINT (null when unset), and what decides the default socket.
struct EndpointEnvironment {
    const char* socket = nullptr;
    const char* remote = nullptr;
    const char* token = nullptr;
    const char* ca_cert = nullptr;
    const char* fingerprint = nullptr;
    bool is_root = false;
    const char* home = nullptr;
};

/// "https://HOST[:PORT][/]" -> host and port (8443 when omitted). Anything else (http://, a
/// path, no host) is an error (EINVAL) saying what is expected.
Result<RemoteEndpoint> parse_remote_url(std::string_view url);

/// A SHA-256 fingerprint as users paste it: 64 hex digits, with or without ':' between pairs,
/// any case, optionally prefixed "sha256:" -> "AB:CD:..." (openssl x509 -fingerprint's form).
Result<std::string> normalize_fingerprint(std::string_view text);

/// Flags over environment: --remote (else CORRAL_REMOTE) picks a remote corrald, which needs a
/// token (--token, else --token-file's first line, else CORRAL_TOKEN); --ca-cert/--fingerprint (else their variables) say how to
/// trust its certificate (not both). Without a remote, the unix socket as choose_socket_path
/// says. Errors are usage errors (exit 2): they name the flag and what is allowed.
Result<Endpoint> choose_endpoint(const EndpointFlags& flags, const EndpointEnvironment& environment);

/// choose_endpoint with this process's environment and effective uid.
Result<Endpoint> resolve_endpoint(const EndpointFlags& flags);

}  // namespace corral::cli
