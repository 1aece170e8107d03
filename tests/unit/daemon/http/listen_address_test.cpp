#include "daemon/http/listen_address.h"

#include <cerrno>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

using ::testing::HasSubstr;

TEST(ListenAddressTest, AcceptsIpv4Ipv6AndLocalhost) {
    EXPECT_EQ(parse_listen_address("127.0.0.1:8443").value(), (ListenAddress{"127.0.0.1", 8443, false}));
    EXPECT_EQ(parse_listen_address("0.0.0.0:1").value(), (ListenAddress{"0.0.0.0", 1, false}));
    EXPECT_EQ(parse_listen_address("[::1]:8443").value(), (ListenAddress{"::1", 8443, true}));
    EXPECT_EQ(parse_listen_address("[::]:65535").value(), (ListenAddress{"::", 65535, true}));
    EXPECT_EQ(parse_listen_address("localhost:8443").value(), (ListenAddress{"127.0.0.1", 8443, false}));
    // Port 0: any free port.
    EXPECT_EQ(parse_listen_address("127.0.0.1:0").value().port, 0);
}

TEST(ListenAddressTest, PrintsAsItParses) {
    EXPECT_EQ(parse_listen_address("[::1]:8443")->to_string(), "[::1]:8443");
    EXPECT_EQ(parse_listen_address("127.0.0.1:9")->to_string(), "127.0.0.1:9");
}

void expect_refused(const std::string& text, const std::string& why) {
    auto parsed = parse_listen_address(text);
    ASSERT_FALSE(parsed) << text;
    EXPECT_EQ(parsed.error().errno_value(), EINVAL);
    // Every message names the flag and the value, says why, and says what is allowed.
    EXPECT_THAT(parsed.error().message(), HasSubstr("--listen '" + text + "'"));
    EXPECT_THAT(parsed.error().message(), HasSubstr(why)) << parsed.error().message();
    EXPECT_THAT(parsed.error().message(), HasSubstr("expected HOST:PORT"));
}

TEST(ListenAddressTest, ErrorsNameTheFlagAndWhatIsAllowed) {
    expect_refused("", "no :PORT");
    expect_refused("8443", "no :PORT");
    expect_refused("127.0.0.1", "no :PORT");
    expect_refused(":8443", "no host");
    expect_refused("127.0.0.1:", "'' is not a port");
    expect_refused("127.0.0.1:65536", "'65536' is not a port");
    expect_refused("127.0.0.1:-1", "'-1' is not a port");
    expect_refused("127.0.0.1:84x3", "'84x3' is not a port");
    expect_refused("example.com:8443", "'example.com' is not an IPv4 address or localhost");
    expect_refused("256.1.1.1:8443", "is not an IPv4 address");
    expect_refused("::1:8443", "an IPv6 address must be in brackets");
    expect_refused("[::1]", "no :PORT after the IPv6 address");
    expect_refused("[::1:8443", "no closing ']'");
    expect_refused("[nope]:8443", "'nope' is not an IPv6 address");
    expect_refused("[127.0.0.1]:8443", "is not an IPv6 address");
}

}  // namespace
}  // namespace corral::daemon
