#include "cli/socket_path.h"

#include <gtest/gtest.h>

namespace corral::cli {
namespace {

TEST(SocketPath, FlagWinsThenEnvironmentThenDaemonDefaults) {
    EXPECT_EQ(choose_socket_path(std::string("/tmp/a.sock"), "/tmp/env.sock", true, "/home/u"), "/tmp/a.sock");
    EXPECT_EQ(choose_socket_path(std::nullopt, "/tmp/env.sock", true, "/home/u"), "/tmp/env.sock");
    EXPECT_EQ(choose_socket_path(std::nullopt, nullptr, true, "/root"), "/var/lib/corral/corrald.sock");
    EXPECT_EQ(choose_socket_path(std::nullopt, "", false, "/home/u"), "/home/u/.local/share/corral/corrald.sock");
}

}  // namespace
}  // namespace corral::cli
