#include "base/unix_socket.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace corral {
namespace {

class UnixSocketTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/corral-unix-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        m_dir = pattern;
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }
    std::filesystem::path m_dir;
};

TEST_F(UnixSocketTest, AListenerTakesAConnectionAndBytesFlow) {
    auto listener = listen_unix_socket(m_dir / "s.sock", {.backlog = 4, .permissions = 0600});
    ASSERT_TRUE(listener) << listener.error().describe();
    struct stat info {};
    ASSERT_EQ(::stat((m_dir / "s.sock").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 0777, 0600u);
    auto client = connect_unix_socket(m_dir / "s.sock");
    ASSERT_TRUE(client) << client.error().describe();
    UniqueFd server(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(server.valid());
    ASSERT_EQ(::write(client->get(), "hi", 2), 2);
    char buffer[2];
    ASSERT_EQ(::read(server.get(), buffer, 2), 2);
    EXPECT_EQ(std::string(buffer, 2), "hi");
}

TEST_F(UnixSocketTest, ErrorsKeepTheErrnoAndNameThePath) {
    auto missing = connect_unix_socket(m_dir / "none.sock");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().errno_value(), ENOENT);
    EXPECT_NE(missing.error().message().find("none.sock"), std::string::npos);
    {
        auto listener = listen_unix_socket(m_dir / "gone.sock");
        ASSERT_TRUE(listener);
    }
    // The file stays after its listener closed: nobody answers there.
    auto refused = connect_unix_socket(m_dir / "gone.sock", SocketMode::NonBlocking);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().errno_value(), ECONNREFUSED);
    // An existing file is the caller's to judge (a stale socket, or another server).
    auto taken = listen_unix_socket(m_dir / "gone.sock");
    ASSERT_FALSE(taken);
    EXPECT_EQ(taken.error().errno_value(), EADDRINUSE);
}

TEST_F(UnixSocketTest, TheFileAppearsOnlyOnceItsSocketListensAndNothingElseIsLeft) {
    // Bound under a private name and linked into place after listen(): a client that waits
    // for the file is never refused by a socket that is bound but not yet listening.
    auto listener = listen_unix_socket(m_dir / "a.sock", {.backlog = 1, .permissions = 0600});
    ASSERT_TRUE(listener) << listener.error().describe();
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(m_dir))
        names.push_back(entry.path().filename());
    EXPECT_EQ(names, std::vector<std::string>{"a.sock"});
    EXPECT_TRUE(connect_unix_socket(m_dir / "a.sock"));
    // A folder so deep that the private name would not fit binds the path itself.
    std::filesystem::path deep = m_dir;
    while (deep.native().size() + 1 + 8 < k_unix_path_max)
        deep /= "d";
    deep = deep.parent_path();
    std::filesystem::create_directories(deep);
    std::filesystem::path longest = deep / std::string(k_unix_path_max - deep.native().size() - 1, 's');
    ASSERT_EQ(longest.native().size(), k_unix_path_max);
    auto deep_listener = listen_unix_socket(longest);
    ASSERT_TRUE(deep_listener) << deep_listener.error().describe();
    EXPECT_TRUE(connect_unix_socket(longest));
    // Neither leaves its private name behind when the path is taken.
    auto taken = listen_unix_socket(m_dir / "a.sock");
    ASSERT_FALSE(taken);
    EXPECT_EQ(taken.error().errno_value(), EADDRINUSE);
    names.clear();
    for (const auto& entry : std::filesystem::directory_iterator(m_dir))
        names.push_back(entry.path().filename());
    std::sort(names.begin(), names.end());
    EXPECT_EQ(names, (std::vector<std::string>{"a.sock", "d"}));
}

TEST_F(UnixSocketTest, PathsLongerThanSunPathAreRefusedNotTruncated) {
    std::string longest(k_unix_path_max, 'x');
    longest[0] = '/';
    EXPECT_TRUE(unix_socket_address(longest));
    auto too_long = unix_socket_address(longest + "y");
    ASSERT_FALSE(too_long);
    EXPECT_EQ(too_long.error().errno_value(), ENAMETOOLONG);
    EXPECT_NE(too_long.error().message().find("at most 107"), std::string::npos) << too_long.error().message();
    EXPECT_FALSE(unix_socket_address(""));
    EXPECT_EQ(listen_unix_socket(longest + "y").error().errno_value(), ENAMETOOLONG);
    EXPECT_EQ(connect_unix_socket(longest + "y").error().errno_value(), ENAMETOOLONG);
}

}  // namespace
}  // namespace corral
