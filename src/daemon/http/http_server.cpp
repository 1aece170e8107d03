#include "daemon/http/http_server.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <deque>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <fmt/format.h>

#include "base/log.h"

namespace corral::daemon {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using UnixSocket = asio::local::stream_protocol::socket;

namespace {

constexpr size_t k_body_limit = 16 * 1024 * 1024;

Result<UniqueFd> bind_unix(const std::filesystem::path& path, unsigned mode) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (path.native().size() >= sizeof(address.sun_path))
        return fail(fmt::format("socket path {} is too long ({} bytes, at most {})", path.native(),
                                path.native().size(), sizeof(address.sun_path) - 1),
                    EINVAL);
    std::copy(path.native().begin(), path.native().end(), address.sun_path);

    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return fail_errno("creating the API socket");
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
        if (errno != EADDRINUSE) return fail_errno(fmt::format("binding {}", path.native()));
        // Someone answering there means another corrald; nobody means a stale file.
        UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (::connect(probe.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0)
            return fail(fmt::format("another corrald is already serving {}", path.native()), EBUSY);
        ::unlink(path.c_str());
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0)
            return fail_errno(fmt::format("binding {}", path.native()));
    }
    if (::chmod(path.c_str(), mode) != 0) return fail_errno(fmt::format("chmod {}", path.native()));
    if (::listen(fd.get(), 64) != 0) return fail_errno("listen on the API socket");
    return fd;
}

HttpRequest to_request(const http::request<http::string_body>& raw, bool& bad_target) {
    HttpRequest request;
    request.method = std::string(raw.method_string());
    request.target = std::string(raw.target());
    bad_target = !parse_target(request.target, request.path, request.query);
    for (const auto& field : raw) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        request.headers[name] = std::string(field.value());
    }
    request.body = raw.body();
    request.websocket_upgrade = websocket::is_upgrade(raw);
    return request;
}

http::response<http::string_body> to_raw(const HttpResponse& response, unsigned version, bool keep_alive) {
    http::response<http::string_body> raw{static_cast<http::status>(response.status), version};
    raw.set(http::field::server, "corrald");
    raw.set(http::field::content_type, response.content_type);
    for (const auto& [name, value] : response.headers) raw.set(name, value);
    raw.body() = response.body;
    raw.keep_alive(keep_alive);
    raw.prepare_payload();
    return raw;
}

/// A WebSocket on its own io_context, run by the connection's thread: reads are a loop of
/// async_read, writes a queue drained one async_write at a time (Beast allows one of each).
class WebSocketSession final : public WebSocketConnection,
                               public std::enable_shared_from_this<WebSocketSession> {
public:
    explicit WebSocketSession(int fd) : m_stream(UnixSocket(m_io)) {
        m_stream.next_layer().assign(asio::local::stream_protocol(), fd);
    }

    void send_text(std::string text) override { enqueue(std::move(text), false); }
    void send_binary(std::string bytes) override { enqueue(std::move(bytes), true); }
    void close() override {
        asio::post(m_io, [self = shared_from_this()] {
            self->m_close_requested = true;
            if (!self->m_writing) self->do_close();
        });
    }

    /// Completes the handshake and serves the connection until either side closes it.
    void run(const http::request<http::string_body>& upgrade, WebSocketHandlers handlers) {
        m_handlers = std::move(handlers);
        beast::error_code ec;
        m_stream.set_option(websocket::stream_base::decorator(
            [](websocket::response_type& response) { response.set(http::field::server, "corrald"); }));
        m_stream.read_message_max(1024 * 1024);
        m_stream.accept(upgrade, ec);
        if (ec) return;
        m_open = true;
        read_next();
        // Frames queued before the handshake go out now.
        asio::post(m_io, [self = shared_from_this()] { self->write_next(); });
        m_io.run();
        if (m_handlers.on_close) m_handlers.on_close();
    }

private:
    void enqueue(std::string data, bool binary) {
        asio::post(m_io, [self = shared_from_this(), data = std::move(data), binary]() mutable {
            // A peer that stops reading must not make the daemon buffer without bound.
            if (self->m_queued_bytes > 8 * 1024 * 1024) return;
            self->m_queued_bytes += data.size();
            self->m_queue.push_back({std::move(data), binary});
            if (self->m_open && !self->m_writing) self->write_next();
        });
    }
    void write_next() {
        if (m_writing || !m_open) return;
        if (m_queue.empty()) {
            if (m_close_requested) do_close();
            return;
        }
        m_writing = true;
        m_stream.binary(m_queue.front().binary);
        m_stream.async_write(asio::buffer(m_queue.front().data),
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                                 self->m_writing = false;
                                 self->m_queued_bytes -= self->m_queue.front().data.size();
                                 self->m_queue.pop_front();
                                 if (ec) {
                                     self->m_open = false;
                                     return;
                                 }
                                 self->write_next();
                             });
    }
    void do_close() {
        if (!m_open) return;
        m_open = false;
        m_stream.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {});
    }
    void read_next() {
        m_stream.async_read(m_buffer, [self = shared_from_this()](beast::error_code ec, size_t) {
            if (ec) {
                self->m_open = false;
                beast::error_code ignored;
                self->m_stream.next_layer().close(ignored);
                return;
            }
            std::string data = beast::buffers_to_string(self->m_buffer.data());
            self->m_buffer.consume(self->m_buffer.size());
            if (self->m_handlers.on_message) self->m_handlers.on_message(data, self->m_stream.got_binary());
            self->read_next();
        });
    }

    struct Frame {
        std::string data;
        bool binary;
    };
    asio::io_context m_io;
    websocket::stream<UnixSocket> m_stream;
    beast::flat_buffer m_buffer;
    WebSocketHandlers m_handlers;
    // Touched only on the io thread.
    std::deque<Frame> m_queue;
    size_t m_queued_bytes = 0;
    bool m_open = false;
    bool m_writing = false;
    bool m_close_requested = false;
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::listen_unix(const std::filesystem::path& path, unsigned mode,
                                                            const Router& router) {
    auto fd = TRY(bind_unix(path, mode));
    return std::unique_ptr<HttpServer>(new HttpServer(std::move(fd), path, router));
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
    m_accept_thread = std::thread([this] { accept_loop(); });
}

void HttpServer::accept_loop() {
    while (!m_stopping) {
        pollfd waiting{m_listen.get(), POLLIN, 0};
        // A timeout so that stop() is noticed without another wake-up fd.
        if (::poll(&waiting, 1, 200) <= 0) continue;
        int fd = ::accept4(m_listen.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) continue;
        std::lock_guard lock(m_mutex);
        // Reap finished connections so the list stays as long as the open ones.
        for (auto it = m_connections.begin(); it != m_connections.end();) {
            if (it->done) {
                it->thread.join();
                it = m_connections.erase(it);
            } else {
                ++it;
            }
        }
        auto& connection = m_connections.emplace_back();
        connection.fd = fd;
        connection.thread = std::thread([this, fd, &connection] {
            serve(fd);
            connection.done = true;
        });
    }
}

void HttpServer::serve(int fd) {
    asio::io_context io;
    UnixSocket socket(io);
    socket.assign(asio::local::stream_protocol(), fd);
    beast::flat_buffer buffer;
    while (!m_stopping) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(k_body_limit);
        beast::error_code ec;
        http::read(socket, buffer, parser, ec);
        if (ec == http::error::body_limit) {
            auto raw = to_raw(error_response({413, "", "request body larger than 16 MiB"}), 11, false);
            http::write(socket, raw, ec);
            break;
        }
        if (ec) break;
        auto raw_request = parser.release();
        bool bad_target = false;
        HttpRequest request = to_request(raw_request, bad_target);
        if (bad_target) {
            auto raw = to_raw(error_response({400, "", "malformed percent-encoding in the request target"}),
                              raw_request.version(), false);
            http::write(socket, raw, ec);
            break;
        }
        if (request.websocket_upgrade) {
            PathParams params;
            ApiError error;
            const WebSocketHandler* handler = m_router.find_websocket(request, params, error);
            std::shared_ptr<WebSocketSession> session;
            ApiResult<WebSocketHandlers> handlers = std::unexpected(error);
            if (handler) {
                // The session takes over the fd; the HTTP socket object lets go of it.
                session = std::make_shared<WebSocketSession>(socket.release());
                handlers = (*handler)(session, request, params);
                if (handlers) {
                    session->run(raw_request, std::move(*handlers));
                    return;
                }
                // Refused before the handshake: answer over the raw fd the session now owns.
                int raw_fd = ::dup(fd);
                session.reset();
                socket = UnixSocket(io);
                socket.assign(asio::local::stream_protocol(), raw_fd);
            }
            auto raw = to_raw(error_response(handlers.error()), raw_request.version(), false);
            http::write(socket, raw, ec);
            break;
        }
        HttpResponse response = m_router.handle(request);
        bool keep_alive = raw_request.keep_alive();
        auto raw = to_raw(response, raw_request.version(), keep_alive);
        http::write(socket, raw, ec);
        if (ec || !keep_alive) break;
    }
    beast::error_code ignored;
    socket.shutdown(UnixSocket::shutdown_both, ignored);
}

void HttpServer::stop() {
    if (m_stopping.exchange(true)) return;
    if (m_accept_thread.joinable()) m_accept_thread.join();
    std::lock_guard lock(m_mutex);
    // Unblock connections waiting in read(); they see the error and end.
    for (auto& connection : m_connections) ::shutdown(connection.fd, SHUT_RDWR);
    for (auto& connection : m_connections) connection.thread.join();
    m_connections.clear();
    ::unlink(m_path.c_str());
}

}  // namespace corral::daemon
