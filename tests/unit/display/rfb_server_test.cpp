#include "display/rfb_server.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "base/unix_socket.h"

namespace corral::display {
namespace {

class RfbServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/corral-rfb-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        m_dir = pattern;
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    // The first 12 bytes the server sends on `fd` (blocking).
    static std::string version_of(int fd) {
        std::string version(12, '\0');
        std::size_t got = 0;
        while (got < 12) {
            const ssize_t n = ::read(fd, version.data() + got, 12 - got);
            if (n <= 0) return version.substr(0, got);
            got += static_cast<std::size_t>(n);
        }
        return version;
    }

    std::filesystem::path m_dir;
    std::shared_ptr<Framebuffer> m_fb = std::make_shared<Framebuffer>(64, 48);
};

TEST_F(RfbServerTest, SocketsAre0600SpeakRfb38AndAreRemovedWithTheServer) {
    const auto full = m_dir / "vnc.sock";
    const auto view = m_dir / "view.sock";
    {
        auto server = RfbServer::start(m_fb, nullptr, {.socket_path = full, .view_only_socket_path = view});
        ASSERT_TRUE(server) << server.error().describe();
        for (const auto& path : {full, view}) {
            struct stat info {};
            ASSERT_EQ(::stat(path.c_str(), &info), 0) << path;
            EXPECT_EQ(info.st_mode & 0777, 0600u) << path;
            auto client = connect_unix_socket(path);
            ASSERT_TRUE(client) << client.error().describe();
            EXPECT_EQ(version_of(client->get()), "RFB 003.008\n");
        }
        // A socket handed in (a relay's) is served too.
        int fds[2];
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        UniqueFd mine(fds[0]);
        (*server)->add_client(UniqueFd(fds[1]), ViewerAccess::ViewOnly);
        EXPECT_EQ(version_of(mine.get()), "RFB 003.008\n");
    }
    EXPECT_FALSE(std::filesystem::exists(full));
    EXPECT_FALSE(std::filesystem::exists(view));
}

TEST_F(RfbServerTest, AFileAlreadyAtTheSocketPathFailsAndNamesIt) {
    const auto path = m_dir / "vnc.sock";
    std::ofstream(path) << "x";
    auto server = RfbServer::start(m_fb, nullptr, {.socket_path = path});
    ASSERT_FALSE(server);
    EXPECT_NE(server.error().message().find(path.string()), std::string::npos) << server.error().message();
    EXPECT_TRUE(std::filesystem::exists(path));  // not someone else's file to remove
}

TEST_F(RfbServerTest, AFramebufferIsRequired) {
    auto server = RfbServer::start(nullptr, nullptr, {});
    ASSERT_FALSE(server);
    EXPECT_EQ(server.error().kind(), ErrorKind::Invalid);
}

}  // namespace
}  // namespace corral::display
