// The API client's HTTP and WebSocket framing against a real Beast server on a temporary unix socket.
#include "cli/api_client.h"

#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>

namespace corral::cli {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using local = asio::local::stream_protocol;
using json = nlohmann::json;

/// A tiny corrald stand-in: echoes HTTP requests as JSON, refuses /error paths with the API's
/// error body, and serves WebSockets on /echo (echoes binary frames) and /api/v1/events.
class FakeDaemon {
public:
    FakeDaemon() {
        char dir[] = "/tmp/corral-cli-test-XXXXXX";
        m_dir = mkdtemp(dir);
        m_path = m_dir + "/corrald.sock";
        m_acceptor.emplace(m_io, local::endpoint(m_path));
        m_thread = std::thread([this] { serve(); });
    }
    ~FakeDaemon() {
        m_stop = true;
        {
            asio::io_context io;
            local::socket wake(io);
            boost::system::error_code ec;
            wake.connect(local::endpoint(m_path), ec);
        }
        m_thread.join();
        unlink(m_path.c_str());
        rmdir(m_dir.c_str());
    }
    const std::string& path() const { return m_path; }

private:
    void serve() {
        while (!m_stop) {
            local::socket socket(m_io);
            boost::system::error_code ec;
            m_acceptor->accept(socket, ec);
            if (ec || m_stop) return;
            handle(std::move(socket));
        }
    }

    void handle(local::socket socket) {
        boost::system::error_code ec;
        beast::flat_buffer buffer;
        http::request<http::string_body> request;
        http::read(socket, buffer, request, ec);
        if (ec) return;
        const std::string target(request.target());
        if (websocket::is_upgrade(request) && target != "/missing") {
            websocket::stream<local::socket> ws(std::move(socket));
            ws.accept(request, ec);
            if (ec) return;
            if (target == "/api/v1/events") {
                ws.text(true);
                ws.write(asio::buffer(std::string(R"({"kind": "vm.created", "target": "web1"})")), ec);
                ws.write(asio::buffer(std::string(R"({"kind": "vm.deleted", "target": "web1"})")), ec);
                ws.close(websocket::close_code::normal, ec);
                // Drain until the client's close answer arrives.
                beast::flat_buffer frame;
                while (!ec) ws.read(frame, ec);
                return;
            }
            for (;;) {
                beast::flat_buffer frame;
                ws.read(frame, ec);
                if (ec) return;
                ws.binary(ws.got_binary());
                ws.write(asio::buffer("echo:" + beast::buffers_to_string(frame.data())), ec);
                if (ec) return;
            }
        }
        http::response<http::string_body> response;
        response.version(11);
        response.set(http::field::content_type, "application/json");
        if (target.find("/error") != std::string::npos || target == "/missing") {
            response.result(target == "/missing" ? http::status::not_found : http::status::conflict);
            response.body() = json{{"error", {{"status", 409}, {"field", "name"}, {"message", "vm web1 already exists"}}}}.dump();
        } else {
            response.result(http::status::ok);
            response.body() = json{{"method", std::string(request.method_string())},
                                   {"target", target},
                                   {"content_type", std::string(request[http::field::content_type])},
                                   {"host", std::string(request[http::field::host])},
                                   {"body", request.body()}}
                                  .dump();
        }
        response.prepare_payload();
        http::write(socket, response, ec);
    }

    asio::io_context m_io;
    std::string m_dir;
    std::string m_path;
    std::optional<local::acceptor> m_acceptor;
    std::atomic<bool> m_stop{false};
    std::thread m_thread;
};

TEST(ApiClient, SendsJsonAndReadsTheAnswer) {
    FakeDaemon daemon;
    ApiClient client(daemon.path());
    auto answer = client.call(HttpRequest{"POST", "/api/v1/vms", json{{"name", "web1"}, {"vcpus", 2}}});
    ASSERT_TRUE(answer) << answer.error().message;
    EXPECT_EQ((*answer)["method"], "POST");
    EXPECT_EQ((*answer)["target"], "/api/v1/vms");
    EXPECT_EQ((*answer)["content_type"], "application/json");
    EXPECT_EQ((*answer)["host"], "localhost");
    EXPECT_EQ(json::parse((*answer)["body"].get<std::string>()), (json{{"name", "web1"}, {"vcpus", 2}}));

    auto get = client.call(HttpRequest{"GET", "/api/v1/vms?x=1", std::nullopt});
    ASSERT_TRUE(get);
    EXPECT_EQ((*get)["body"], "");
    EXPECT_EQ((*get)["content_type"], "") << "no body, no content type";
}

TEST(ApiClient, TurnsErrorBodiesIntoRefusals) {
    FakeDaemon daemon;
    ApiClient client(daemon.path());
    auto answer = client.call(HttpRequest{"POST", "/api/v1/error", json::object()});
    ASSERT_FALSE(answer);
    EXPECT_EQ(answer.error().kind, ApiErrorKind::Refused);
    EXPECT_EQ(answer.error().status, 409);
    EXPECT_EQ(answer.error().field, "name");
    // The message names web1 already: it is not said twice.
    EXPECT_EQ(format_error(answer.error(), "web1"), "corral: vm web1 already exists (field name)");
    EXPECT_EQ(format_error(answer.error(), "web2"), "corral: web2: vm web1 already exists (field name)");
}

TEST(ApiClient, MissingSocketIsUnreachableAndSaysWhichSocket) {
    ApiClient client("/tmp/corral-cli-test-no-such-dir/corrald.sock");
    auto answer = client.send(HttpRequest{"GET", "/api/v1/host", std::nullopt});
    ASSERT_FALSE(answer);
    EXPECT_EQ(answer.error().kind, ApiErrorKind::Unreachable);
    EXPECT_EQ(exit_code_for(answer.error()), 3);
    const std::string text = format_error(answer.error(), "web1");
    EXPECT_NE(text.find("cannot reach corrald at /tmp/corral-cli-test-no-such-dir/corrald.sock"), std::string::npos) << text;
    EXPECT_NE(text.find("corrald --state-dir"), std::string::npos) << text;
}

TEST(WebSocketSession, EchoesBinaryFramesAndClosesCleanly) {
    FakeDaemon daemon;
    auto session = WebSocketSession::connect(daemon.path(), "/echo");
    ASSERT_TRUE(session) << session.error().message;
    std::string received;
    (*session)->send(std::string("hello\0world", 11));
    auto result = (*session)->run([&](std::string_view data, bool binary) {
        EXPECT_TRUE(binary);
        received.append(data);
        (*session)->close();
    });
    ASSERT_TRUE(result) << result.error().message;
    EXPECT_EQ(received, std::string("echo:hello\0world", 16));
}

TEST(WebSocketSession, ReadsTextFramesUntilTheServerCloses) {
    FakeDaemon daemon;
    auto session = WebSocketSession::connect(daemon.path(), "/api/v1/events");
    ASSERT_TRUE(session) << session.error().message;
    std::vector<std::string> events;
    auto result = (*session)->run([&](std::string_view data, bool binary) {
        EXPECT_FALSE(binary);
        events.emplace_back(data);
    });
    ASSERT_TRUE(result) << result.error().message;
    ASSERT_EQ(events.size(), 2U);
    EXPECT_EQ(json::parse(events[1])["kind"], "vm.deleted");
}

TEST(WebSocketSession, RefusedUpgradeCarriesTheDaemonsError) {
    FakeDaemon daemon;
    auto session = WebSocketSession::connect(daemon.path(), "/missing");
    ASSERT_FALSE(session);
    EXPECT_EQ(session.error().kind, ApiErrorKind::Refused);
    EXPECT_EQ(session.error().message, "vm web1 already exists");
}

TEST(WebSocketSession, MissingSocketIsUnreachable) {
    auto session = WebSocketSession::connect("/tmp/corral-cli-test-no-such-dir/corrald.sock", "/api/v1/events");
    ASSERT_FALSE(session);
    EXPECT_EQ(session.error().kind, ApiErrorKind::Unreachable);
}

}  // namespace
}  // namespace corral::cli
