#include "cli/endpoint.h"

#include <arpa/inet.h>
#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "cli/socket_path.h"

namespace corral::cli {

namespace {

constexpr const char* k_url_form = "expected https://HOST[:PORT] (PORT defaults to 8443; IPv6 as https://[::1]:8443)";

std::optional<std::string> pick(const std::optional<std::string>& flag, const char* env) {
    if (flag && !flag->empty()) return flag;
    if (env != nullptr && *env != '\0') return std::string(env);
    return std::nullopt;
}

/// The token in --token-file FILE: its first line, without surrounding blanks (what
/// `corral token create NAME > FILE` wrote). A flag, unlike --token, is not visible in `ps`.
Result<std::string> read_token_file(const std::string& path) {
    std::ifstream file(path);
    if (!file) return fail(fmt::format("--token-file {}: cannot read it: {}", path, std::strerror(errno)), EINVAL);
    std::string line;
    std::getline(file, line);
    const auto first = line.find_first_not_of(" \t\r");
    const auto last = line.find_last_not_of(" \t\r");
    if (first == std::string::npos)
        return fail(fmt::format("--token-file {}: the file is empty; it should hold the token on its first line", path),
                    EINVAL);
    return line.substr(first, last - first + 1);
}

}  // namespace

std::string RemoteEndpoint::url() const {
    return host.find(':') != std::string::npos ? fmt::format("https://[{}]:{}", host, port)
                                               : fmt::format("https://{}:{}", host, port);
}

Result<RemoteEndpoint> parse_remote_url(std::string_view url) {
    auto bad = [&](std::string_view why) {
        return fail(fmt::format("--remote '{}': {}; {}", url, why, k_url_form), EINVAL);
    };
    constexpr std::string_view k_scheme = "https://";
    if (url.substr(0, 7) == "http://")
        return bad("corrald's TCP listener speaks only TLS: use https://");
    if (url.size() < k_scheme.size() || url.substr(0, k_scheme.size()) != k_scheme) return bad("not an https:// URL");
    std::string_view rest = url.substr(k_scheme.size());
    if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
    if (rest.find_first_of("/?#@") != std::string_view::npos) return bad("only a host and a port may follow https://");
    RemoteEndpoint remote;
    std::string_view port;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) return bad("the IPv6 address has no closing ']'");
        remote.host = std::string(rest.substr(1, close - 1));
        rest.remove_prefix(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return bad("expected :PORT after the IPv6 address");
            port = rest.substr(1);
            if (port.empty()) return bad("no port after ':'");
        }
        unsigned char binary[16];
        if (::inet_pton(AF_INET6, remote.host.c_str(), binary) != 1)
            return bad(fmt::format("'{}' is not an IPv6 address", remote.host));
    } else {
        const auto colon = rest.find(':');
        remote.host = std::string(rest.substr(0, colon));
        if (colon != std::string_view::npos) {
            port = rest.substr(colon + 1);
            if (port.empty()) return bad("no port after ':'");
            if (port.find(':') != std::string_view::npos) return bad("an IPv6 address must be in brackets");
        }
    }
    if (remote.host.empty()) return bad("no host");
    if (!port.empty()) {
        unsigned value = 0;
        const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
            return bad(fmt::format("'{}' is not a port (1 to 65535)", port));
        remote.port = static_cast<uint16_t>(value);
    }
    return remote;
}

Result<std::string> normalize_fingerprint(std::string_view text) {
    std::string_view rest = text;
    std::string lower_prefix(rest.substr(0, 7));
    for (auto& c : lower_prefix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (lower_prefix == "sha256:" || lower_prefix == "sha256=") rest.remove_prefix(7);
    std::string digits;
    for (char c : rest) {
        if (c == ':' || c == ' ') continue;
        if (!std::isxdigit(static_cast<unsigned char>(c)))
            return fail(fmt::format("--fingerprint '{}': '{}' is not a hex digit; expected the certificate's SHA-256 "
                                    "as 64 hex digits, pairs optionally separated by ':' (as corrald logs it)",
                                    text, c),
                        EINVAL);
        digits += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (digits.size() != 64)
        return fail(fmt::format("--fingerprint '{}': {} hex digits; a SHA-256 fingerprint has 64 (as corrald logs it: "
                                "AB:CD:... with 32 pairs)",
                                text, digits.size()),
                    EINVAL);
    std::string out;
    for (size_t i = 0; i < digits.size(); i += 2) {
        if (i) out += ':';
        out += digits.substr(i, 2);
    }
    return out;
}

Result<Endpoint> choose_endpoint(const EndpointFlags& flags, const EndpointEnvironment& environment) {
    Endpoint endpoint;
    // An explicit --socket beats CORRAL_REMOTE (but not --remote: that is an error below).
    const bool socket_flag = flags.socket && !flags.socket->empty();
    const bool remote_flag = flags.remote && !flags.remote->empty();
    const auto remote_url = remote_flag || !socket_flag ? pick(flags.remote, environment.remote) : std::nullopt;
    if (!remote_url) {
        for (const auto& [flag, value] :
             {std::pair{"--token", &flags.token}, std::pair{"--token-file", &flags.token_file},
              std::pair{"--ca-cert", &flags.ca_cert}, std::pair{"--fingerprint", &flags.fingerprint}})
            if (*value && !(*value)->empty())
                return fail(fmt::format("{} is for a remote corrald: add --remote https://HOST:PORT (or set "
                                        "CORRAL_REMOTE)",
                                        flag),
                            EINVAL);
        endpoint.socket_path =
            choose_socket_path(flags.socket, environment.socket, environment.is_root, environment.home);
        return endpoint;
    }
    if (socket_flag)
        return fail("--socket and --remote exclude each other: the socket is for the corrald on this host, --remote "
                    "for one reached over TLS",
                    EINVAL);
    RemoteEndpoint remote = TRY(parse_remote_url(*remote_url));
    const bool token_flag = flags.token && !flags.token->empty();
    const bool token_file_flag = flags.token_file && !flags.token_file->empty();
    if (token_flag && token_file_flag)
        return fail("--token and --token-file exclude each other: give the token once", EINVAL);
    const auto token = token_file_flag ? std::optional(TRY(read_token_file(*flags.token_file)))
                                       : pick(flags.token, environment.token);
    if (!token)
        return fail(fmt::format("{} needs a token: --token-file FILE, CORRAL_TOKEN or --token TOKEN (make one on that "
                                "host with 'corral token create NAME')",
                                remote.url()),
                    EINVAL);
    remote.token = *token;
    // A flag overrides both variables: --ca-cert with CORRAL_FINGERPRINT set means the CA file.
    const bool flag_given = (flags.ca_cert && !flags.ca_cert->empty()) || (flags.fingerprint && !flags.fingerprint->empty());
    const auto ca_cert = flag_given ? flags.ca_cert : pick(std::nullopt, environment.ca_cert);
    const auto fingerprint = flag_given ? flags.fingerprint : pick(std::nullopt, environment.fingerprint);
    if (ca_cert && !ca_cert->empty() && fingerprint && !fingerprint->empty())
        return fail("--ca-cert and --fingerprint exclude each other: trust a CA, or pin one certificate", EINVAL);
    if (ca_cert && !ca_cert->empty()) {
        std::ifstream file(*ca_cert);
        if (!file)
            return fail(fmt::format("--ca-cert {}: cannot read it: {}", *ca_cert, std::strerror(errno)), EINVAL);
        remote.ca_cert = *ca_cert;
    }
    if (fingerprint && !fingerprint->empty()) remote.fingerprint = TRY(normalize_fingerprint(*fingerprint));
    endpoint.remote = std::move(remote);
    return endpoint;
}

Result<Endpoint> resolve_endpoint(const EndpointFlags& flags) {
    EndpointEnvironment environment;
    environment.socket = std::getenv("CORRAL_SOCKET");
    environment.remote = std::getenv("CORRAL_REMOTE");
    environment.token = std::getenv("CORRAL_TOKEN");
    environment.ca_cert = std::getenv("CORRAL_CA_CERT");
    environment.fingerprint = std::getenv("CORRAL_FINGERPRINT");
    environment.is_root = geteuid() == 0;
    environment.home = std::getenv("HOME");
    if (environment.home == nullptr || *environment.home == '\0') {
        if (const passwd* pw = getpwuid(geteuid()); pw != nullptr) environment.home = pw->pw_dir;
    }
    return choose_endpoint(flags, environment);
}

}  // namespace corral::cli
