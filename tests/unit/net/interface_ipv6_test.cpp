#include "net/interface_ipv6.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <thread>

#include "net/bridge.h"
#include "private_netns.h"

namespace corral::net {
namespace {

TEST(InterfaceIpv6, TheGatewayAddressIsSetOnceReplacedAndRemovedWithDadOff) {
    if (auto reason = testing::netns_skip_reason())
        GTEST_SKIP() << *reason;
    std::thread([] {
        // A network namespace of this thread's own: the host's interfaces are never touched.
        ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
        ASSERT_TRUE(ensure_bridge("cbr6"));
        EXPECT_TRUE(global_ipv6_addresses("cbr6").value().empty());
        const InterfaceIpv6 first{*parse_ipv6("fd00:77::1"), 64}, second{*parse_ipv6("fd00:78::1"), 64};
        auto set = set_global_ipv6_address("cbr6", first);
        ASSERT_TRUE(set) << set.error().message();
        ASSERT_TRUE(set_global_ipv6_address("cbr6", first)) << "the same address again changes nothing";
        EXPECT_EQ(global_ipv6_addresses("cbr6").value(), std::vector<InterfaceIpv6>{first});
        std::ifstream dad("/proc/sys/net/ipv6/conf/cbr6/accept_dad");
        int accept_dad = -1;
        dad >> accept_dad;
        EXPECT_EQ(accept_dad, 0);
        // Up without a port (no carrier): the address must not wait tentative for DAD, which
        // would keep it so until a carrier came. With DAD off the kernel clears the flag in
        // its address work after the link comes up, a workqueue item: a moment later on a busy
        // host (the fresh check saw it still set right after set_link_up).
        ASSERT_TRUE(set_link_up("cbr6"));
        auto tentative = [] { return std::system("ip -6 addr show dev cbr6 | grep -q tentative") == 0; };
        for (int i = 0; i < 100 && tentative(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        EXPECT_FALSE(tentative()) << "the address stays tentative";
        ASSERT_TRUE(set_global_ipv6_address("cbr6", second));
        EXPECT_EQ(global_ipv6_addresses("cbr6").value(), std::vector<InterfaceIpv6>{second}) << "replaced, not added";
        ASSERT_TRUE(set_global_ipv6_address("cbr6", std::nullopt));
        EXPECT_TRUE(global_ipv6_addresses("cbr6").value().empty());
        auto missing = set_global_ipv6_address("cbr-none", first);
        ASSERT_FALSE(missing);
        EXPECT_NE(missing.error().message().find("no network device named cbr-none"), std::string::npos);
        ASSERT_TRUE(delete_bridge("cbr6"));
    }).join();
}

}  // namespace
}  // namespace corral::net
