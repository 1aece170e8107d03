#include "net/tap.h"

#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include "private_netns.h"

namespace corral::net {
namespace {

using testing::NamespacedTap;
using testing::test_frame;

#define SKIP_WITHOUT_NETNS()                                                  \
    if (auto reason = testing::netns_skip_reason()) GTEST_SKIP() << *reason

TEST(TapTest, OpensANamedTapWithVnetHeaderAndProbesOffloads) {
    SKIP_WITHOUT_NETNS();
    NamespacedTap ns;
    ASSERT_TRUE(ns.tap) << ns.error;
    EXPECT_EQ(ns.tap->name(), "ctest0");
    ifreq request{};
    ASSERT_EQ(::ioctl(ns.tap->fd(), TUNGETIFF, &request), 0);
    EXPECT_EQ(request.ifr_flags & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
    int header_size = 0;
    ASSERT_EQ(::ioctl(ns.tap->fd(), TUNGETVNETHDRSZ, &header_size), 0);
    EXPECT_EQ(header_size, 12);
    EXPECT_TRUE(ns.tap->supported_offloads().csum) << "Linux taps take TUN_F_CSUM";
    EXPECT_TRUE(ns.tap->set_offloads(ns.tap->supported_offloads()));
    EXPECT_TRUE(::fcntl(ns.tap->fd(), F_GETFL) & O_NONBLOCK);
}

TEST(TapTest, MovesFramesWithTheirHeaderBothWays) {
    SKIP_WITHOUT_NETNS();
    NamespacedTap ns;
    ASSERT_TRUE(ns.tap && ns.packet.valid()) << ns.error;
    std::vector<uint8_t> buffer(2000);
    EXPECT_EQ(ns.tap->read(buffer).value(), 0u) << "nothing waiting: 0, not blocking";

    auto frame = test_frame(60);
    ASSERT_TRUE(ns.send(frame));
    size_t n = 0;
    for (int i = 0; i < 200 && n == 0; ++i) {
        n = ns.tap->read(buffer).value();
        if (n == 0) usleep(1000);
    }
    ASSERT_EQ(n, 12 + frame.size());
    EXPECT_TRUE(std::equal(frame.begin(), frame.end(), buffer.begin() + 12));

    uint8_t header[12] = {};
    auto out = test_frame(80, 7);
    iovec parts[2] = {{header, 12}, {out.data(), out.size()}};
    ASSERT_EQ(ns.tap->write(parts).value(), 12 + out.size());
    auto received = ns.receive();
    ASSERT_TRUE(received);
    EXPECT_EQ(*received, out);
}

TEST(TapTest, AdoptChecksTheInheritedFd) {
    int pipe_fds[2];
    ASSERT_EQ(::pipe(pipe_fds), 0);
    auto not_tap = Tap::adopt(pipe_fds[0]);
    ASSERT_FALSE(not_tap);
    EXPECT_NE(not_tap.error().message().find("is not a tap device"), std::string::npos) << not_tap.error().message();
    ::close(pipe_fds[0]);  // still ours: adopt() takes the fd only when it accepts it
    ::close(pipe_fds[1]);
    auto closed = Tap::adopt(999);
    ASSERT_FALSE(closed);
    EXPECT_NE(closed.error().message().find("fd=999 is not open"), std::string::npos);

    SKIP_WITHOUT_NETNS();
    NamespacedTap ns;
    ASSERT_TRUE(ns.tap) << ns.error;
    auto adopted = Tap::adopt(::dup(ns.tap->fd()));
    ASSERT_TRUE(adopted) << adopted.error().describe();
    EXPECT_EQ(adopted->name(), "ctest0");
}

TEST(TapTest, RejectsBadNames) {
    EXPECT_FALSE(Tap::open(""));
    EXPECT_FALSE(Tap::open("a-name-that-is-far-too-long"));
}

}  // namespace
}  // namespace corral::net
