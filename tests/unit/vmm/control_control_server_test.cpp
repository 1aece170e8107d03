#include "vmm/control/control_server.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "base/unique_fd.h"

namespace corral::vmm {
namespace {

namespace fs = std::filesystem;

class ControlServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "corral-control-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        m_dir = pattern;
        auto server = ControlServer::listen((m_dir / "control.sock").string());
        ASSERT_TRUE(server) << server.error().describe();
        m_server = std::move(*server);
    }
    void TearDown() override {
        m_server.reset();
        fs::remove_all(m_dir);
    }

    UniqueFd connect_client() {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::string path = m_server->path();
        std::memcpy(address.sun_path, path.c_str(), path.size());
        EXPECT_EQ(::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        timeval timeout{2, 0};
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
        return fd;
    }

    /// One round of the VMM loop: poll the server's fds, then service them.
    void pump(int rounds = 3) {
        for (int i = 0; i < rounds; ++i) {
            std::vector<pollfd> fds;
            m_server->add_poll_fds(fds);
            ::poll(fds.data(), fds.size(), 50);
            m_server->service(fds, [this](const ControlRequest& request) {
                m_seen.push_back(request.action);
                return nlohmann::json{{"ok", true}, {"action", to_string(request.action)}}.dump();
            });
        }
    }

    /// Reads one answer line (or "" when the server closed the connection).
    static std::string read_line(int fd) {
        std::string line;
        char c;
        while (::recv(fd, &c, 1, 0) == 1) {
            if (c == '\n') return line;
            line += c;
        }
        return line;
    }

    static void send_text(int fd, const std::string& text) {
        ASSERT_EQ(::send(fd, text.data(), text.size(), MSG_NOSIGNAL), static_cast<ssize_t>(text.size()));
    }

    fs::path m_dir;
    std::unique_ptr<ControlServer> m_server;
    std::vector<ControlAction> m_seen;
};

TEST_F(ControlServerTest, AnswersEachRequestLineInOrder) {
    UniqueFd client = connect_client();
    pump(1);
    send_text(client.get(), "{\"action\":\"status\"}\n{\"action\":\"pause\"}\r\n\n{\"action\":\"resume\"}\n");
    pump();
    EXPECT_EQ(nlohmann::json::parse(read_line(client.get()))["action"], "status");
    EXPECT_EQ(nlohmann::json::parse(read_line(client.get()))["action"], "pause");
    EXPECT_EQ(nlohmann::json::parse(read_line(client.get()))["action"], "resume");
    EXPECT_EQ(m_seen, (std::vector{ControlAction::Status, ControlAction::Pause, ControlAction::Resume}));
}

TEST_F(ControlServerTest, RequestSplitAcrossWritesIsOneRequest) {
    UniqueFd client = connect_client();
    pump(1);
    send_text(client.get(), "{\"action\":");
    pump();
    EXPECT_TRUE(m_seen.empty());
    send_text(client.get(), "\"counters\"}\n");
    pump();
    EXPECT_EQ(nlohmann::json::parse(read_line(client.get()))["action"], "counters");
}

TEST_F(ControlServerTest, BadRequestsGetAnErrorAndTheConnectionStaysUsable) {
    UniqueFd client = connect_client();
    pump(1);
    send_text(client.get(), "not json\n{\"action\":\"dance\"}\n{\"action\":\"status\"}\n");
    pump();
    auto first = nlohmann::json::parse(read_line(client.get()));
    EXPECT_EQ(first["ok"], false);
    EXPECT_NE(first["error"].get<std::string>().find("not valid JSON"), std::string::npos);
    auto second = nlohmann::json::parse(read_line(client.get()));
    EXPECT_EQ(second["ok"], false);
    EXPECT_NE(second["error"].get<std::string>().find("unknown action 'dance'"), std::string::npos);
    EXPECT_EQ(nlohmann::json::parse(read_line(client.get()))["ok"], true);
    EXPECT_EQ(m_seen, std::vector{ControlAction::Status});
}

TEST_F(ControlServerTest, OverlongLineClosesTheConnection) {
    UniqueFd client = connect_client();
    UniqueFd other = connect_client();
    pump(1);
    ASSERT_EQ(m_server->client_count(), 2u);
    std::string huge(ControlServer::k_max_line_bytes + 100, 'x');
    ::send(client.get(), huge.data(), huge.size(), MSG_NOSIGNAL);
    pump(5);
    EXPECT_EQ(read_line(client.get()), "");  // EOF: the server hung up
    EXPECT_EQ(m_server->client_count(), 1u);
    // The other connection is unaffected.
    send_text(other.get(), "{\"action\":\"status\"}\n");
    pump();
    EXPECT_EQ(nlohmann::json::parse(read_line(other.get()))["ok"], true);
}

TEST_F(ControlServerTest, AnswerLargerThanTheSocketBufferArrivesWhole) {
    UniqueFd client = connect_client();
    pump(1);
    send_text(client.get(), "{\"action\":\"status\"}\n{\"action\":\"counters\"}\n");
    // A screenshot's answer: megabytes, far more than a unix socket buffers.
    std::string big(8 << 20, 'p');
    std::vector<pollfd> fds;
    m_server->add_poll_fds(fds);
    ::poll(fds.data(), fds.size(), 50);
    m_server->service(fds, [&](const ControlRequest& request) {
        m_seen.push_back(request.action);
        return nlohmann::json{{"ok", true}, {"data", request.action == ControlAction::Status ? big : "small"}}.dump();
    });
    // The client reads while the VMM loop goes on sending.
    std::string received;
    int lines = 0;
    for (int round = 0; round < 2000 && lines < 2; ++round) {
        pump(1);
        char chunk[65536];
        ssize_t n = ::recv(client.get(), chunk, sizeof chunk, MSG_DONTWAIT);
        if (n == 0) break;  // the server hung up
        if (n > 0) received.append(chunk, static_cast<size_t>(n));
        lines = static_cast<int>(std::count(received.begin(), received.end(), '\n'));
    }
    ASSERT_EQ(lines, 2);
    auto first = nlohmann::json::parse(received.substr(0, received.find('\n')));
    EXPECT_EQ(first["data"].get<std::string>().size(), big.size());
    auto second = nlohmann::json::parse(received.substr(received.find('\n') + 1));
    EXPECT_EQ(second["data"], "small") << "the next answer follows, in order";
    EXPECT_EQ(m_server->client_count(), 1u);
}

TEST_F(ControlServerTest, ClosedClientsAreForgotten) {
    {
        UniqueFd client = connect_client();
        pump(1);
        EXPECT_EQ(m_server->client_count(), 1u);
    }
    pump();
    EXPECT_EQ(m_server->client_count(), 0u);
}

TEST_F(ControlServerTest, SocketFileIsRemovedOnDestruction) {
    std::string path = m_server->path();
    EXPECT_TRUE(fs::exists(path));
    m_server.reset();
    EXPECT_FALSE(fs::exists(path));
}

TEST(ControlServer, ExistingPathIsAnError) {
    std::string pattern = (std::filesystem::temp_directory_path() / "corral-control-XXXXXX").string();
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    auto result = ControlServer::listen(pattern);  // a directory already there
    EXPECT_FALSE(result);
    std::filesystem::remove_all(pattern);
    EXPECT_FALSE(ControlServer::listen(""));
}

}  // namespace
}  // namespace corral::vmm
