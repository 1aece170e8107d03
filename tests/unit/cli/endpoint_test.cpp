#include "cli/endpoint.h"

#include <unistd.h>

#include <fstream>

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace corral::cli {
namespace {

using ::testing::HasSubstr;

constexpr const char* k_fingerprint =
    "06:AD:02:9E:B2:9B:36:5B:00:02:7F:44:7E:BF:44:46:5A:37:50:70:CC:3C:50:92:AB:A4:02:37:F8:30:D1:D4";

TEST(RemoteUrl, HostAndPort) {
    auto remote = parse_remote_url("https://h1.example:9443");
    ASSERT_TRUE(remote) << remote.error().message();
    EXPECT_EQ(remote->host, "h1.example");
    EXPECT_EQ(remote->port, 9443);
    EXPECT_EQ(parse_remote_url("https://127.0.0.1")->port, 8443);  // the default
    EXPECT_EQ(parse_remote_url("https://127.0.0.1:8443/")->host, "127.0.0.1");
    auto v6 = parse_remote_url("https://[::1]:8443");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "::1");
    EXPECT_EQ(v6->url(), "https://[::1]:8443");
    EXPECT_EQ(parse_remote_url("https://[::1]")->port, 8443);
}

TEST(RemoteUrl, RefusesWhatIsNotAnHttpsHostAndPort) {
    for (const auto& [url, why] : std::vector<std::pair<std::string, std::string>>{
             {"http://h1:8443", "speaks only TLS: use https://"},
             {"h1:8443", "not an https:// URL"},
             {"https://", "no host"},
             {"https://:8443", "no host"},
             {"https://h1:", "no port"},
             {"https://h1:0", "is not a port"},
             {"https://h1:70000", "is not a port"},
             {"https://h1:84a3", "is not a port"},
             {"https://h1:8443/api/v1", "only a host and a port"},
             {"https://user@h1:8443", "only a host and a port"},
             {"https://::1:8443", "must be in brackets"},
             {"https://[::1:8443", "no closing ']'"},
             {"https://[nope]:8443", "not an IPv6 address"},
         }) {
        auto remote = parse_remote_url(url);
        ASSERT_FALSE(remote) << url;
        EXPECT_THAT(remote.error().message(), HasSubstr("--remote '" + url + "'"));
        EXPECT_THAT(remote.error().message(), HasSubstr(why)) << remote.error().message();
        EXPECT_THAT(remote.error().message(), HasSubstr("expected https://HOST[:PORT]"));
    }
}

TEST(Fingerprint, AcceptsWhatUsersPaste) {
    EXPECT_EQ(normalize_fingerprint(k_fingerprint).value(), k_fingerprint);
    std::string plain;
    for (char c : std::string(k_fingerprint))
        if (c != ':') plain += static_cast<char>(std::tolower(c));
    EXPECT_EQ(normalize_fingerprint(plain).value(), k_fingerprint);
    EXPECT_EQ(normalize_fingerprint("SHA256:" + plain).value(), k_fingerprint);
    EXPECT_EQ(normalize_fingerprint(std::string("sha256=") + k_fingerprint).value(), k_fingerprint);
}

TEST(Fingerprint, RefusesWhatIsNotASha256) {
    auto short_one = normalize_fingerprint("AB:CD");
    ASSERT_FALSE(short_one);
    EXPECT_THAT(short_one.error().message(), HasSubstr("4 hex digits; a SHA-256 fingerprint has 64"));
    auto not_hex = normalize_fingerprint(std::string(k_fingerprint).replace(0, 1, "G"));
    ASSERT_FALSE(not_hex);
    EXPECT_THAT(not_hex.error().message(), HasSubstr("'G' is not a hex digit"));
}

TEST(ChooseEndpoint, TheUnixSocketWithoutRemote) {
    EndpointEnvironment environment;
    environment.home = "/home/u";
    auto endpoint = choose_endpoint({}, environment);
    ASSERT_TRUE(endpoint);
    EXPECT_FALSE(endpoint->remote);
    EXPECT_EQ(endpoint->socket_path, "/home/u/.local/share/corral/corrald.sock");
    EndpointFlags flags;
    flags.socket = "/tmp/s.sock";
    environment.remote = "https://h1:8443";  // an explicit --socket wins over CORRAL_REMOTE
    EXPECT_EQ(choose_endpoint(flags, environment)->socket_path, "/tmp/s.sock");
    EXPECT_FALSE(choose_endpoint(flags, environment)->remote);
}

TEST(ChooseEndpoint, RemoteFromFlagsOrEnvironment) {
    EndpointFlags flags;
    flags.remote = "https://127.0.0.1:9443";
    flags.token = "corral_secret";
    flags.fingerprint = k_fingerprint;
    auto endpoint = choose_endpoint(flags, {});
    ASSERT_TRUE(endpoint) << endpoint.error().message();
    ASSERT_TRUE(endpoint->remote);
    EXPECT_EQ(endpoint->remote->token, "corral_secret");
    EXPECT_EQ(endpoint->remote->fingerprint, k_fingerprint);
    EXPECT_EQ(endpoint->describe(), "https://127.0.0.1:9443");

    EndpointEnvironment environment;
    environment.remote = "https://h2:8443";
    environment.token = "corral_env";
    environment.fingerprint = k_fingerprint;
    auto from_env = choose_endpoint({}, environment);
    ASSERT_TRUE(from_env) << from_env.error().message();
    EXPECT_EQ(from_env->remote->host, "h2");
    EXPECT_EQ(from_env->remote->token, "corral_env");

    // --ca-cert on the command line overrides CORRAL_FINGERPRINT rather than clashing with it.
    char path[] = "/tmp/corral-endpoint-ca-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    EndpointFlags ca;
    ca.ca_cert = path;
    auto with_ca = choose_endpoint(ca, environment);
    ::unlink(path);
    ASSERT_TRUE(with_ca) << with_ca.error().message();
    EXPECT_EQ(with_ca->remote->ca_cert, path);
    EXPECT_EQ(with_ca->remote->fingerprint, "");
}

void expect_usage_error(const EndpointFlags& flags, const EndpointEnvironment& environment, const std::string& message) {
    auto endpoint = choose_endpoint(flags, environment);
    ASSERT_FALSE(endpoint) << message;
    EXPECT_THAT(endpoint.error().message(), HasSubstr(message));
}

TEST(ChooseEndpoint, UsageErrors) {
    EndpointFlags no_token;
    no_token.remote = "https://h1:8443";
    expect_usage_error(no_token, {}, "https://h1:8443 needs a token: --token-file FILE, CORRAL_TOKEN or --token TOKEN");

    EndpointFlags token_only;
    token_only.token = "t";
    expect_usage_error(token_only, {}, "--token is for a remote corrald: add --remote");
    EndpointFlags pin_only;
    pin_only.fingerprint = k_fingerprint;
    expect_usage_error(pin_only, {}, "--fingerprint is for a remote corrald");

    EndpointFlags both;
    both.remote = "https://h1:8443";
    both.socket = "/tmp/s.sock";
    both.token = "t";
    expect_usage_error(both, {}, "--socket and --remote exclude each other");

    EndpointFlags two_trusts;
    two_trusts.remote = "https://h1:8443";
    two_trusts.token = "t";
    two_trusts.ca_cert = "/etc/hostname";
    two_trusts.fingerprint = k_fingerprint;
    expect_usage_error(two_trusts, {}, "--ca-cert and --fingerprint exclude each other");

    EndpointFlags missing_ca;
    missing_ca.remote = "https://h1:8443";
    missing_ca.token = "t";
    missing_ca.ca_cert = "/nonexistent/ca.pem";
    expect_usage_error(missing_ca, {}, "--ca-cert /nonexistent/ca.pem: cannot read it");

    EndpointFlags bad_pin;
    bad_pin.remote = "https://h1:8443";
    bad_pin.token = "t";
    bad_pin.fingerprint = "abc";
    expect_usage_error(bad_pin, {}, "--fingerprint 'abc'");

    EndpointFlags bad_url;
    bad_url.remote = "http://h1:8443";
    bad_url.token = "t";
    expect_usage_error(bad_url, {}, "use https://");
}

TEST(ChooseEndpoint, TokenFromAFileKeepsItOutOfPs) {
    char path[] = "/tmp/corral-endpoint-token-XXXXXX";
    const int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    std::ofstream(path) << "corral_from_file\n";
    EndpointFlags flags;
    flags.remote = "https://h1:8443";
    flags.token_file = path;
    EndpointEnvironment environment;
    environment.token = "corral_env";  // the flag wins over the variable
    auto endpoint = choose_endpoint(flags, environment);
    ASSERT_TRUE(endpoint) << endpoint.error().message();
    EXPECT_EQ(endpoint->remote->token, "corral_from_file");

    flags.token = "t";
    expect_usage_error(flags, {}, "--token and --token-file exclude each other");
    flags.token.reset();
    std::ofstream(path, std::ios::trunc) << "\n";
    expect_usage_error(flags, {}, "the file is empty");
    ::unlink(path);
    expect_usage_error(flags, {}, fmt::format("--token-file {}: cannot read it", path));

    EndpointFlags local;
    local.token_file = "/etc/hostname";
    expect_usage_error(local, {}, "--token-file is for a remote corrald: add --remote");
}

}  // namespace
}  // namespace corral::cli
