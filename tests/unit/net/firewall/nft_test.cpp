#include <cstdlib>

#include <gtest/gtest.h>

#include "net/firewall/firewall.h"
#include "net/firewall/nft.h"

namespace corral::net::firewall {
namespace {

// The nft binary comes from $CORRAL_NFT when set (tests point it at a stand-in); here, /bin/sh
// stands in for it, to show stdin, stdout, stderr and the exit status all come back.
TEST(FirewallNft, PassesInputAndReturnsOutputAndStatus) {
    ::setenv("CORRAL_NFT", "/bin/sh", 1);
    auto run = run_nft({"-c", "cat; echo to-stderr >&2; exit 3"}, "the script\n");
    ::unsetenv("CORRAL_NFT");
    ASSERT_TRUE(run) << run.error().message();
    EXPECT_EQ(run->exit_code, 3);
    EXPECT_EQ(run->out, "the script\n");
    EXPECT_EQ(run->err, "to-stderr\n");
}

TEST(FirewallNft, MissingNftIsUnavailableAndSaysWhatToInstall) {
    ::setenv("CORRAL_NFT", "/nonexistent/nft", 1);
    auto applied = apply(Model{});
    ::unsetenv("CORRAL_NFT");
    ASSERT_FALSE(applied);
    EXPECT_EQ(applied.error().kind(), ErrorKind::Unavailable);
    EXPECT_EQ(applied.error().message(), "cannot run /nonexistent/nft (install nftables)");
}

}  // namespace
}  // namespace corral::net::firewall
