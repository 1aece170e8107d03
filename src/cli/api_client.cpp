#include "cli/api_client.h"

#include <sys/un.h>

#include <deque>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <fmt/format.h>

namespace corral::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using local_socket = asio::local::stream_protocol::socket;

namespace {

constexpr std::uint64_t k_body_limit = 64ULL * 1024 * 1024;

ApiResult<void> connect_socket(local_socket& socket, const std::string& path) {
    if (path.size() >= sizeof(sockaddr_un{}.sun_path))
        return std::unexpected(unreachable_error(path, "the socket path is longer than a unix socket path may be"));
    boost::system::error_code ec;
    socket.connect(asio::local::stream_protocol::endpoint(path), ec);
    if (ec) return std::unexpected(unreachable_error(path, ec.message()));
    return {};
}

ApiError broken(const std::string& what, const boost::system::error_code& ec) {
    return ApiError{ApiErrorKind::Protocol, fmt::format("{}: {}", what, ec.message()), {}, 0, {}};
}

}  // namespace

ApiError unreachable_error(const std::string& socket_path, const std::string& reason) {
    ApiError error;
    error.kind = ApiErrorKind::Unreachable;
    error.socket = socket_path;
    error.message = fmt::format(
        "cannot reach corrald at {}: {} (is corrald running? start it with 'corrald --state-dir DIR', "
        "or point --socket or CORRAL_SOCKET at its socket)",
        socket_path, reason);
    return error;
}

ApiClient::ApiClient(std::string socket_path) : m_socket_path(std::move(socket_path)) {}

ApiResult<HttpResponse> ApiClient::send(const HttpRequest& request) {
    asio::io_context io;
    local_socket socket(io);
    TRY(connect_socket(socket, m_socket_path));

    const http::verb verb = http::string_to_verb(request.method);
    if (verb == http::verb::unknown)
        return api_fail(ApiErrorKind::Protocol, fmt::format("unknown HTTP method {}", request.method));
    http::request<http::string_body> message{verb, request.target, 11};
    message.set(http::field::host, "localhost");
    message.set(http::field::user_agent, "corral-cli/0.1");
    message.set(http::field::accept, "application/json");
    message.keep_alive(false);
    if (request.body) {
        message.set(http::field::content_type, "application/json");
        message.body() = request.body->dump();
    }
    message.prepare_payload();

    boost::system::error_code ec;
    http::write(socket, message, ec);
    if (ec) return std::unexpected(broken(fmt::format("sending {} {} to corrald", request.method, request.target), ec));

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(k_body_limit);
    http::read(socket, buffer, parser, ec);
    if (ec)
        return std::unexpected(broken(fmt::format("reading corrald's answer to {} {}", request.method, request.target), ec));

    auto& response = parser.get();
    HttpResponse result;
    result.status = static_cast<int>(response.result_int());
    result.content_type = std::string(response[http::field::content_type]);
    result.body = std::move(response.body());
    socket.shutdown(local_socket::shutdown_both, ec);  // best effort: the answer is complete
    return result;
}

struct WebSocketSession::Impl {
    asio::io_context io;
    websocket::stream<local_socket> ws{io};
    beast::flat_buffer read_buffer;
    std::deque<std::pair<std::string, bool>> outbox;
    bool writing = false;
    bool close_requested = false;
    bool closing = false;
    bool finished = false;
    asio::steady_timer close_timer{io};
    std::optional<ApiError> failure;
    const FrameHandler* on_frame = nullptr;

    void start_read() {
        ws.async_read(read_buffer, [this](boost::system::error_code ec, std::size_t) {
            if (ec) {
                finished = true;
                close_timer.cancel();
                // A close by either side ends the session normally; anything else is a broken connection.
                if (ec != websocket::error::closed && ec != asio::error::operation_aborted && !closing &&
                    ec != asio::error::eof)
                    failure = broken("reading from corrald's WebSocket", ec);
                return;
            }
            const auto data = read_buffer.cdata();
            (*on_frame)(std::string_view(static_cast<const char*>(data.data()), data.size()), ws.got_binary());
            read_buffer.consume(read_buffer.size());
            start_read();
        });
    }

    void pump() {
        if (writing || finished) return;
        if (outbox.empty()) {
            if (close_requested && !closing) {
                closing = true;
                ws.async_close(websocket::close_code::normal, [this](boost::system::error_code) {
                    // The pending read completes with `closed` once the peer answers.
                });
            }
            return;
        }
        writing = true;
        ws.binary(outbox.front().second);
        ws.async_write(asio::buffer(outbox.front().first), [this](boost::system::error_code ec, std::size_t) {
            writing = false;
            outbox.pop_front();
            if (ec) {
                if (!finished && !closing) failure = broken("writing to corrald's WebSocket", ec);
                finished = true;
                ws.next_layer().close(ec);
                return;
            }
            pump();
        });
    }
};

WebSocketSession::WebSocketSession(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
WebSocketSession::~WebSocketSession() = default;

ApiResult<std::unique_ptr<WebSocketSession>> WebSocketSession::connect(const std::string& socket_path,
                                                                       const std::string& target) {
    auto impl = std::make_unique<Impl>();
    TRY(connect_socket(impl->ws.next_layer(), socket_path));
    websocket::response_type response;
    boost::system::error_code ec;
    // Asynchronous on purpose: Boost 1.74's synchronous handshake leaves `response` empty when the
    // upgrade is refused, and the refusal's body carries the daemon's error message.
    impl->ws.async_handshake(response, "localhost", target, [&ec](boost::system::error_code result) { ec = result; });
    impl->io.run();
    impl->io.restart();
    if (ec) {
        if (response.result_int() != 0 && response.result() != http::status::switching_protocols) {
            HttpResponse refused{static_cast<int>(response.result_int()),
                                 std::string(response[http::field::content_type]), response.body()};
            return std::unexpected(error_from_response(refused));
        }
        return std::unexpected(broken(fmt::format("opening a WebSocket on {}", target), ec));
    }
    impl->ws.read_message_max(k_body_limit);
    return std::unique_ptr<WebSocketSession>(new WebSocketSession(std::move(impl)));
}

void WebSocketSession::send(std::string data, bool binary) {
    asio::post(m_impl->io, [impl = m_impl.get(), data = std::move(data), binary]() mutable {
        if (impl->finished || impl->close_requested) return;
        impl->outbox.emplace_back(std::move(data), binary);
        impl->pump();
    });
}

void WebSocketSession::close(std::chrono::milliseconds delay) {
    asio::post(m_impl->io, [impl = m_impl.get(), delay] {
        if (impl->finished || impl->close_requested) return;
        impl->close_timer.expires_after(delay);
        impl->close_timer.async_wait([impl](boost::system::error_code ec) {
            if (ec || impl->finished) return;
            impl->close_requested = true;
            impl->pump();
        });
    });
}

ApiResult<void> WebSocketSession::run(const FrameHandler& on_frame) {
    m_impl->on_frame = &on_frame;
    m_impl->start_read();
    m_impl->io.run();
    m_impl->io.restart();
    if (m_impl->failure) return std::unexpected(*m_impl->failure);
    return {};
}

}  // namespace corral::cli
