// HostAccess: what a TCP client may name on the host (corrald --allow-path/--allow-bridge/--allow-tap).
#include "daemon/host_access.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {
namespace fs = std::filesystem;

class HostAccessTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = fs::temp_directory_path() / ("host-access-test-" + std::to_string(::getpid()));
        fs::remove_all(m_dir);
        fs::create_directories(m_dir / "state");
        fs::create_directories(m_dir / "allowed/sub");
        fs::create_directories(m_dir / "outside");
        std::ofstream(m_dir / "allowed/file.img") << "ok";
        std::ofstream(m_dir / "outside/secret") << "secret";
        fs::create_symlink("../outside/secret", m_dir / "allowed/link-out");
        fs::create_symlink("../outside", m_dir / "allowed/dir-out");
        fs::create_symlink("file.img", m_dir / "allowed/link-in");
        auto opened = HostAccess::open(
            {.paths = {(m_dir / "allowed").string()}, .bridges = {"br0"}, .taps = {}, .webhooks = {}}, m_dir / "state");
        ASSERT_TRUE(opened) << opened.error().describe();
        m_access = std::move(*opened);
    }
    void TearDown() override { fs::remove_all(m_dir); }

    std::string path(const std::string& relative) const { return (m_dir / relative).string(); }

    fs::path m_dir;
    std::unique_ptr<HostAccess> m_access;
};

TEST_F(HostAccessTest, UnixSocketIsNotLimited) {
    EXPECT_TRUE(m_access->check_path(Origin::UnixSocket, "import", "/etc/shadow"));
    auto file = m_access->open_file(Origin::UnixSocket, "import", "/etc/shadow", HostFileKind::Image);
    ASSERT_TRUE(file);
    EXPECT_EQ(file->path, "/etc/shadow");
    EXPECT_TRUE(m_access->check_nics(Origin::UnixSocket, {{.bridge = "docker0", .tap = "", .mac = "", .network = "", .ipv4 = "", .groups = {}}}));
}

TEST_F(HostAccessTest, OutsideTheAllowedFoldersIs403NamingTheField) {
    auto refused = m_access->check_path(Origin::Tls, "import", "/etc/shadow");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().status, 403);
    EXPECT_EQ(refused.error().field, "import");
    EXPECT_NE(refused.error().message.find("corrald --allow-path DIR"), std::string::npos);
    EXPECT_FALSE(m_access->check_path(Origin::Tls, "import", path("allowed/../outside/secret")));
    EXPECT_FALSE(m_access->check_path(Origin::Tls, "import", path("allowed-not")));
    EXPECT_TRUE(m_access->check_path(Origin::Tls, "import", path("allowed/file.img")));
    EXPECT_EQ(m_access->check_path(Origin::Tls, "import", "relative").error().status, 400);
}

TEST_F(HostAccessTest, FilesAreOpenedBeneathTheAllowedFolder) {
    auto file = m_access->open_file(Origin::Tls, "import", path("allowed/file.img"), HostFileKind::Plain);
    ASSERT_TRUE(file) << file.error().message;
    EXPECT_TRUE(file->path.starts_with("/proc/self/fd/"));
    std::ifstream in(file->path);
    std::string content;
    in >> content;
    EXPECT_EQ(content, "ok");
    EXPECT_TRUE(m_access->open_file(Origin::Tls, "import", path("allowed/link-in"), HostFileKind::Plain));
    for (const char* out : {"allowed/link-out", "allowed/dir-out/secret"}) {
        auto refused = m_access->open_file(Origin::Tls, "import", path(out), HostFileKind::Plain);
        ASSERT_FALSE(refused) << out;
        EXPECT_EQ(refused.error().status, 403) << out;
        EXPECT_EQ(refused.error().field, "import");
    }
    EXPECT_EQ(m_access->open_file(Origin::Tls, "import", path("allowed/sub"), HostFileKind::Plain).error().status, 400);
    EXPECT_EQ(m_access->open_file(Origin::Tls, "import", path("allowed/none"), HostFileKind::Plain).error().status, 400);
}

TEST_F(HostAccessTest, NewFilesAreMadeInAFolderOpenedBeneathIt) {
    auto file = m_access->new_file(Origin::Tls, "path", path("allowed/sub/new.img"));
    ASSERT_TRUE(file) << file.error().message;
    std::ofstream(file->path) << "x";
    EXPECT_TRUE(fs::exists(m_dir / "allowed/sub/new.img"));
    EXPECT_EQ(m_access->new_file(Origin::Tls, "path", path("allowed/dir-out/new.img")).error().status, 403);
    EXPECT_EQ(m_access->new_file(Origin::Tls, "path", path("allowed/link-out")).error().status, 409);
    EXPECT_EQ(m_access->new_file(Origin::Tls, "path", path("allowed")).error().status, 400);
    EXPECT_FALSE(fs::exists(m_dir / "outside/new.img"));
}

TEST_F(HostAccessTest, PoolFoldersAreMadeBeneathItWithoutSymlinks) {
    auto folder = m_access->folder(Origin::Tls, "path", path("allowed/pools/p1"));
    ASSERT_TRUE(folder) << folder.error().message;
    EXPECT_EQ(*folder, (fs::canonical(m_dir / "allowed") / "pools/p1").string());
    EXPECT_TRUE(fs::is_directory(m_dir / "allowed/pools/p1"));
    EXPECT_EQ(m_access->folder(Origin::Tls, "path", path("allowed/dir-out/p2")).error().status, 403);
    EXPECT_FALSE(fs::exists(m_dir / "outside/p2"));
}

TEST_F(HostAccessTest, BridgesAndTapsOnlyAsAllowed) {
    EXPECT_TRUE(m_access->check_nics(Origin::Tls, {{.bridge = "br0", .tap = "", .mac = "", .network = "", .ipv4 = "", .groups = {}}}));
    auto bridge = m_access->check_nics(Origin::Tls, {{.bridge = "br0", .tap = "", .mac = "", .network = "", .ipv4 = "", .groups = {}},
                                                     {.bridge = "docker0", .tap = "", .mac = "", .network = "", .ipv4 = "", .groups = {}}});
    ASSERT_FALSE(bridge);
    EXPECT_EQ(bridge.error().status, 403);
    EXPECT_EQ(bridge.error().field, "nics[1].bridge");
    auto tap = m_access->check_nics(Origin::Tls, {{.bridge = "", .tap = "tap0", .mac = "", .network = "", .ipv4 = "", .groups = {}}});
    ASSERT_FALSE(tap);
    EXPECT_EQ(tap.error().field, "nics[0].tap");
}

TEST(HostAccessWebhookTest, OverTcpOnlyUnderAnAllowedPrefixEndingAtAUrlBoundary) {
    auto opened = HostAccess::open(
        {.paths = {}, .bridges = {}, .taps = {}, .webhooks = {"http://10.0.0.5:8080/hooks", "https://h.example/"}},
        "/nonexistent-state");
    ASSERT_TRUE(opened) << opened.error().describe();
    const HostAccess& access = **opened;
    for (const char* url : {"http://10.0.0.5:8080/hooks", "http://10.0.0.5:8080/hooks/ci",
                            "http://10.0.0.5:8080/hooks?x=1", "https://h.example/anything"})
        EXPECT_TRUE(access.check_webhook(Origin::Tls, "webhook", url)) << url;
    for (const char* url :
         {"http://10.0.0.5:8080/hooks-evil", "http://10.0.0.5:8080/hooksx", "http://10.0.0.50:8080/hooks",
          "http://10.0.0.5:80800/hooks", "http://127.0.0.1:22/", "https://h.example.evil/"}) {
        auto refused = access.check_webhook(Origin::Tls, "webhook", url);
        ASSERT_FALSE(refused) << url;
        EXPECT_EQ(refused.error().status, 403);
        EXPECT_EQ(refused.error().field, "webhook");
        EXPECT_NE(refused.error().message.find("corrald --allow-webhook URL-PREFIX"), std::string::npos);
    }
    EXPECT_TRUE(access.check_webhook(Origin::UnixSocket, "webhook", "http://127.0.0.1:22/"));  // local root: anything
    // A prefix corrald could not call is refused at start, naming the flag.
    auto bad =
        HostAccess::open({.paths = {}, .bridges = {}, .taps = {}, .webhooks = {"10.0.0.5/hooks"}}, "/nonexistent");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("--allow-webhook '10.0.0.5/hooks'"), std::string::npos);
}

TEST(HostAccessStartTest, AllowedFoldersMayNotOverlapTheStateFolder) {
    auto dir = fs::temp_directory_path() / ("host-access-start-" + std::to_string(::getpid()));
    fs::create_directories(dir / "state/pools");
    EXPECT_FALSE(HostAccess::open(
        {.paths = {(dir / "state/pools").string()}, .bridges = {}, .taps = {}, .webhooks = {}}, dir / "state"));
    EXPECT_FALSE(HostAccess::open({.paths = {dir.string()}, .bridges = {}, .taps = {}, .webhooks = {}}, dir / "state"));
    EXPECT_FALSE(HostAccess::open({.paths = {(dir / "missing").string()}, .bridges = {}, .taps = {}, .webhooks = {}},
                                  dir / "state"));
    fs::remove_all(dir);
}

}  // namespace
}  // namespace corral::daemon
