#include "engine/qmp_client.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "engine_test_support.h"

namespace corral::engine {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

/// The QEMU side of a QMP connection, scripted by each test: whole lines in, raw bytes out.
class Peer {
public:
    explicit Peer(int fd) : m_fd(fd) {}
    ~Peer() { close(); }
    void close() {
        if (m_fd >= 0)
            ::close(m_fd);
        m_fd = -1;
    }
    void write(const std::string& bytes) {
        ASSERT_EQ(::write(m_fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    }
    /// One message the client sent, parsed.
    json read_message() {
        std::string line;
        char c;
        while (::read(m_fd, &c, 1) == 1) {
            if (c == '\n')
                break;
            line += c;
        }
        EXPECT_TRUE(line.ends_with("\r")) << "QMP messages end with CRLF: " << line;
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        return json::parse(line);
    }
    void greet() {
        write(
            R"({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}}, "capabilities": ["oob"]}})"
            "\r\n");
    }
    /// Answers the client's qmp_capabilities.
    void accept_capabilities() {
        json request = read_message();
        EXPECT_EQ(request["execute"], "qmp_capabilities");
        write(json{{"return", json::object()}, {"id", request["id"]}}.dump() + "\r\n");
    }

private:
    int m_fd;
};

struct Pair {
    UniqueFd client;
    int peer = -1;
};

Pair make_pair() {
    int fds[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    return {UniqueFd(fds[0]), fds[1]};
}

TEST(QmpClient, HandshakeReadsTheGreetingAndNegotiatesCapabilities) {
    auto [client_fd, peer_fd] = make_pair();
    std::thread qemu([fd = peer_fd] {
        Peer peer(fd);
        peer.greet();
        peer.accept_capabilities();
    });
    auto client = QmpClient::handshake(std::move(client_fd), 2s);
    qemu.join();
    ASSERT_TRUE(client) << client.error().describe();
    EXPECT_EQ(client->greeting()["version"]["qemu"]["major"], 7);
}

TEST(QmpClient, ExecuteSkipsEventsAndReassemblesSplitAnswers) {
    auto [client_fd, peer_fd] = make_pair();
    std::thread qemu([fd = peer_fd] {
        Peer peer(fd);
        peer.greet();
        peer.accept_capabilities();
        json request = peer.read_message();
        EXPECT_EQ(request["execute"], "query-status");
        EXPECT_FALSE(request.contains("arguments"));
        // An async event first, then an answer to some older command, then ours in pieces.
        peer.write(R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESUME"})"
                   "\r\n");
        peer.write(R"({"return": {"status": "stale"}, "id": 999})"
                   "\r\n");
        std::string answer =
            json{{"return", {{"running", true}, {"status", "running"}}}, {"id", request["id"]}}
                .dump() +
            "\r\n";
        peer.write(answer.substr(0, 10));
        std::this_thread::sleep_for(50ms);
        peer.write(answer.substr(10));
    });
    auto client = QmpClient::handshake(std::move(client_fd), 2s);
    ASSERT_TRUE(client) << client.error().describe();
    auto status = client->execute("query-status");
    qemu.join();
    ASSERT_TRUE(status) << status.error().describe();
    EXPECT_EQ((*status)["status"], "running");
    EXPECT_EQ(client->skipped_events(), 1u);
}

TEST(QmpClient, ExecuteSendsArguments) {
    auto [client_fd, peer_fd] = make_pair();
    json seen;
    std::thread qemu([fd = peer_fd, &seen] {
        Peer peer(fd);
        peer.greet();
        peer.accept_capabilities();
        seen = peer.read_message();
        peer.write(json{{"return", json::object()}, {"id", seen["id"]}}.dump() + "\r\n");
    });
    auto client = QmpClient::handshake(std::move(client_fd), 2s);
    ASSERT_TRUE(client);
    auto result = client->execute("human-monitor-command", json{{"command-line", "info status"}});
    qemu.join();
    ASSERT_TRUE(result) << result.error().describe();
    EXPECT_EQ(seen["arguments"]["command-line"], "info status");
}

TEST(QmpClient, ErrorAnswerBecomesAnErrorWithClassAndDescription) {
    auto [client_fd, peer_fd] = make_pair();
    std::thread qemu([fd = peer_fd] {
        Peer peer(fd);
        peer.greet();
        peer.accept_capabilities();
        json request = peer.read_message();
        peer.write(json{{"error",
                         {{"class", "GenericError"},
                          {"desc", "Resetting the Virtual Machine is required"}}},
                        {"id", request["id"]}}
                       .dump() +
                   "\r\n");
    });
    auto client = QmpClient::handshake(std::move(client_fd), 2s);
    ASSERT_TRUE(client);
    auto result = client->execute("cont");
    qemu.join();
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().message(),
              "QMP cont failed: GenericError: Resetting the Virtual Machine is required");
    EXPECT_EQ(result.error().errno_value(), EIO);
}

TEST(QmpClient, SilentPeerTimesOut) {
    auto [client_fd, peer_fd] = make_pair();
    Peer peer(peer_fd);
    auto started = std::chrono::steady_clock::now();
    auto client = QmpClient::handshake(std::move(client_fd), 200ms);
    ASSERT_FALSE(client);
    EXPECT_EQ(client.error().errno_value(), ETIMEDOUT);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 2s);
}

TEST(QmpClient, PeerHangingUpIsConnectionReset) {
    auto [client_fd, peer_fd] = make_pair();
    std::thread qemu([fd = peer_fd] {
        Peer peer(fd);
        peer.greet();
        peer.accept_capabilities();
        peer.read_message();
        peer.close();
    });
    auto client = QmpClient::handshake(std::move(client_fd), 2s);
    ASSERT_TRUE(client);
    auto result = client->execute("query-status");
    qemu.join();
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().errno_value(), ECONNRESET);
}

TEST(QmpClient, MalformedMessageIsAProtocolError) {
    auto [client_fd, peer_fd] = make_pair();
    std::thread qemu([fd = peer_fd] {
        Peer peer(fd);
        peer.write("this is not json\r\n");
    });
    auto client = QmpClient::handshake(std::move(client_fd), 2s);
    qemu.join();
    ASSERT_FALSE(client);
    EXPECT_EQ(client.error().errno_value(), EPROTO);
}

TEST(QmpClient, ConnectToAMissingSocketIsNotFound) {
    testing::TestDir dir;
    auto client = QmpClient::connect(dir.path("qmp.sock"), 1s);
    ASSERT_FALSE(client);
    EXPECT_EQ(client.error().errno_value(), ENOENT);
}

TEST(QmpClient, ConnectsOverAUnixSocket) {
    testing::TestDir dir;
    std::string path = dir.path("qmp.sock").string();
    UniqueFd listener(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    ASSERT_EQ(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    ASSERT_EQ(::listen(listener.get(), 1), 0);
    std::thread qemu([&] {
        Peer peer(::accept(listener.get(), nullptr, nullptr));
        peer.greet();
        peer.accept_capabilities();
        json request = peer.read_message();
        peer.write(
            json{{"return", {{"status", "paused"}, {"running", false}}}, {"id", request["id"]}}
                .dump() +
            "\r\n");
    });
    auto client = QmpClient::connect(path, 2s);
    ASSERT_TRUE(client) << client.error().describe();
    auto status = client->execute("query-status");
    qemu.join();
    ASSERT_TRUE(status) << status.error().describe();
    EXPECT_EQ((*status)["status"], "paused");
}

}  // namespace
}  // namespace corral::engine
