#include "net/bridge.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <sched.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "private_netns.h"

namespace corral::net {
namespace {

using ::testing::HasSubstr;

/// Runs `body` on a thread of its own in a fresh network namespace (the namespace is per
/// thread, so the rest of the test process and the host keep theirs).
template <typename Body>
void in_private_netns(Body body) {
    std::thread([&] {
        ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
        body();
    }).join();
}

TEST(Bridge, MadeConfiguredAndRemovedIdempotently) {
    if (auto reason = testing::netns_skip_reason()) GTEST_SKIP() << *reason;
    in_private_netns([] {
        auto made = ensure_bridge("cbr0");
        ASSERT_TRUE(made) << made.error().message();
        ASSERT_TRUE(ensure_bridge("cbr0"));  // a second corrald start finds it made
        // Its own MAC, which a port with a lower one does not change.
        // ip(8) in this thread's namespace (a child process inherits it; /sys shows the host's).
        auto read_mac = [] {
            std::string mac;
            if (FILE* out = ::popen("ip -o link show cbr0 | sed -n 's/.*link\\/ether \\([0-9a-f:]*\\).*/\\1/p'", "r")) {
                char line[64] = {};
                if (std::fgets(line, sizeof line, out)) mac = line;
                ::pclose(out);
            }
            while (!mac.empty() && mac.back() == '\n') mac.pop_back();
            return mac;
        };
        EXPECT_EQ(read_mac(), bridge_mac("cbr0"));
        EXPECT_EQ(bridge_mac("cbr0").substr(0, 3), "02:");
        EXPECT_NE(bridge_mac("cbr0"), bridge_mac("cbr1"));
        ASSERT_EQ(std::system("ip link add cbrp0 address 00:00:00:00:00:01 type veth peer name cbrp1 && ip link set cbrp0 master cbr0"), 0);
        EXPECT_EQ(read_mac(), bridge_mac("cbr0"));
        ASSERT_EQ(std::system("ip link del cbrp0"), 0);
        EXPECT_TRUE(bridge_exists("cbr0"));
        EXPECT_FALSE(bridge_exists("lo"));
        ASSERT_TRUE(set_mtu("cbr0", 1400));
        EXPECT_EQ(get_mtu("cbr0").value(), 1400);
        EXPECT_EQ(get_ipv4_address("cbr0").value(), "");
        auto set = set_ipv4_address("cbr0", "10.0.100.1", 24);
        ASSERT_TRUE(set) << set.error().message();
        ASSERT_TRUE(set_ipv4_address("cbr0", "10.0.100.1", 24));
        EXPECT_EQ(get_ipv4_address("cbr0").value(), "10.0.100.1");
        ASSERT_TRUE(set_link_up("cbr0"));
        ASSERT_TRUE(set_link_up("cbr0"));
        auto removed = delete_bridge("cbr0");
        ASSERT_TRUE(removed) << removed.error().message();
        EXPECT_EQ(::if_nametoindex("cbr0"), 0u);
        auto again = delete_bridge("cbr0");
        ASSERT_FALSE(again);
        EXPECT_EQ(again.error().errno_value(), ENOENT);
    });
}

TEST(Bridge, NeverTakesOverADeviceThatIsNotABridge) {
    if (auto reason = testing::netns_skip_reason()) GTEST_SKIP() << *reason;
    in_private_netns([] {
        auto taken = ensure_bridge("lo");
        ASSERT_FALSE(taken);
        EXPECT_EQ(taken.error().errno_value(), EINVAL);
        EXPECT_THAT(taken.error().message(), HasSubstr("a network device named lo exists and is not a bridge"));
        EXPECT_FALSE(delete_bridge("lo"));
    });
}

TEST(Bridge, RefusesBadValues) {
    EXPECT_EQ(ensure_bridge("a-name-longer-than-15").error().errno_value(), EINVAL);
    EXPECT_EQ(set_mtu("lo", 20).error().errno_value(), EINVAL);
    EXPECT_EQ(set_ipv4_address("lo", "10.0.0.300", 24).error().errno_value(), EINVAL);
}

}  // namespace
}  // namespace corral::net
