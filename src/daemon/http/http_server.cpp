#include "daemon/http/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <deque>
#include <limits>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detect_ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <fmt/format.h>

#include "base/log.h"
#include "base/unix_socket.h"
#include "daemon/http/listen_address.h"
#include "daemon/http/tls_context.h"

namespace corral::daemon {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace ssl = asio::ssl;
using UnixSocket = asio::local::stream_protocol::socket;
using TcpSocket = asio::ip::tcp::socket;
using TlsStream = ssl::stream<TcpSocket>;

namespace {

constexpr size_t k_body_limit = 16 * 1024 * 1024;
constexpr auto k_handshake_timeout = std::chrono::seconds(10);
// A TCP listener is reachable by anyone on the network, token or not: bound the threads they get,
// in all and per client address, and how long a client may hold one without progress.
constexpr size_t k_max_tcp_connections = 128;
constexpr size_t k_max_tcp_connections_per_client = 16;
/// The whole header of a connection's first request (slowloris: half a header holds a thread).
constexpr auto k_header_timeout = std::chrono::seconds(10);
/// An idle keep-alive connection, until the next request's header is complete.
constexpr auto k_keep_alive_timeout = std::chrono::seconds(30);
/// No byte of a body, or of an answer taken by the client, for this long ends the connection.
constexpr auto k_io_idle_timeout = std::chrono::seconds(30);
/// After k_slow_body_grace, a body arriving slower than this on average ends the connection.
constexpr uint64_t k_min_body_rate = 16 * 1024;
constexpr auto k_slow_body_grace = std::chrono::seconds(60);
/// Refused connections are logged at most once per this period (a flood must not flood the log).
constexpr auto k_refusal_log_period = std::chrono::seconds(10);

Result<UniqueFd> bind_unix(const std::filesystem::path& path, unsigned mode) {
    const UnixListenOptions options{.backlog = 64, .permissions = static_cast<mode_t>(mode)};
    auto listening = listen_unix_socket(path, options);
    if (listening || listening.error().errno_value() != EADDRINUSE) return listening;
    // Someone answering there means another corrald; nobody means a stale file.
    if (connect_unix_socket(path)) return fail(fmt::format("another corrald is already serving {}", path.native()), EBUSY);
    ::unlink(path.c_str());
    return listen_unix_socket(path, options);
}

HttpRequest to_request(const http::request_header<>& raw, bool& bad_target) {
    HttpRequest request;
    request.method = std::string(raw.method_string());
    request.target = std::string(raw.target());
    bad_target = !parse_target(request.target, request.path, request.query);
    for (const auto& field : raw) {
        std::string name(field.name_string());
        for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        request.headers[name] = std::string(field.value());
    }
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

}  // namespace

Result<TcpListener> bind_tcp(const ListenAddress& listen) {
    const std::string flag = fmt::format("--listen {}", listen.to_string());
    sockaddr_storage storage{};
    socklen_t length = 0;
    if (listen.ipv6) {
        auto* address = reinterpret_cast<sockaddr_in6*>(&storage);
        address->sin6_family = AF_INET6;
        address->sin6_port = htons(listen.port);
        ::inet_pton(AF_INET6, listen.host.c_str(), &address->sin6_addr);
        length = sizeof(sockaddr_in6);
    } else {
        auto* address = reinterpret_cast<sockaddr_in*>(&storage);
        address->sin_family = AF_INET;
        address->sin_port = htons(listen.port);
        ::inet_pton(AF_INET, listen.host.c_str(), &address->sin_addr);
        length = sizeof(sockaddr_in);
    }
    UniqueFd fd(::socket(listen.ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return fail_errno(fmt::format("{}: creating a TCP socket", flag));
    int on = 1;
    // A restarted corrald must get its port back while old connections sit in TIME_WAIT.
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    // [::] and 0.0.0.0 are separate listeners (both may be given).
    if (listen.ipv6) ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
        const int error = errno;
        switch (error) {
            case EADDRINUSE:
                return fail(fmt::format("{}: port {} is already in use (another corrald or another program "
                                        "listens there): choose another port, or stop that program",
                                        flag, listen.port),
                            error);
            case EADDRNOTAVAIL:
                return fail(fmt::format("{}: {} is not an address of this host (see 'ip address'); "
                                        "0.0.0.0 or [::] listen on all of them",
                                        flag, listen.host),
                            error);
            case EACCES:
                return fail(fmt::format("{}: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port "
                                        "from 1024 (8443 is usual)",
                                        flag),
                            error);
            default: errno = error; return fail_errno(fmt::format("{}: binding", flag));
        }
    }
    if (::listen(fd.get(), 64) != 0) return fail_errno(fmt::format("{}: listen", flag));
    sockaddr_storage bound{};
    socklen_t bound_length = sizeof bound;
    ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_length);
    TcpListener listener{std::move(fd), listen};
    listener.address.port = ntohs(listen.ipv6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return listener;
}

namespace {

void close_stream(UnixSocket& stream) {
    beast::error_code ignored;
    stream.shutdown(UnixSocket::shutdown_both, ignored);
}

void close_stream(TlsStream& stream) {
    // No TLS close_notify exchange: answers are length-delimited, and waiting for a peer's
    // close_notify would let it hold the thread.
    beast::error_code ignored;
    stream.lowest_layer().shutdown(TcpSocket::shutdown_both, ignored);
}

/// Whether a Sec-WebSocket-Protocol header ("binary, base64") lists "binary".
bool offers_binary_protocol(std::string_view header) {
    while (!header.empty()) {
        const size_t comma = header.find(',');
        std::string_view item = header.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (item == "binary") return true;
        if (comma == std::string_view::npos) break;
        header.remove_prefix(comma + 1);
    }
    return false;
}

/// A WebSocket on the connection's io_context, run by the connection's thread: reads are a loop
/// of async_read, writes a queue drained one async_write at a time (Beast allows one of each).
/// It shares the io_context so that send_*() from other threads can always post to it, even
/// after the connection ended.
template <class Stream>
class WebSocketSession final : public WebSocketConnection,
                               public std::enable_shared_from_this<WebSocketSession<Stream>> {
public:
    WebSocketSession(std::shared_ptr<asio::io_context> io, Stream stream)
        : m_io(std::move(io)), m_stream(std::move(stream)) {}

    /// The HTTP stream underneath, to refuse an upgrade with a plain answer.
    Stream& next_layer() { return m_stream.next_layer(); }

    void send_text(std::string text) override { enqueue(std::move(text), false); }
    void send_binary(std::string bytes) override { enqueue(std::move(bytes), true); }
    void close() override {
        asio::post(*m_io, [self = this->shared_from_this()] {
            self->m_close_requested = true;
            if (!self->m_writing) self->do_close();
        });
    }
    void when_queue_below(size_t bytes, std::function<void()> ready) override {
        asio::post(*m_io, [self = this->shared_from_this(), bytes, ready = std::move(ready)]() mutable {
            if (self->m_queued_bytes < bytes) {
                ready();
                return;
            }
            self->m_waiter = {bytes, std::move(ready)};
        });
    }

    /// Completes the handshake and serves the connection until either side closes it.
    void run(const http::request<http::string_body>& upgrade, WebSocketHandlers handlers) {
        m_handlers = std::move(handlers);
        beast::error_code ec;
        // noVNC (and websockify's other clients) ask for the subprotocol "binary", and a browser
        // fails the handshake when a protocol it asked for is not answered; every route here
        // speaks binary frames, so it is the one accepted.
        const auto offered = upgrade[http::field::sec_websocket_protocol];
        const bool wants_binary = offers_binary_protocol(std::string_view(offered.data(), offered.size()));
        m_stream.set_option(websocket::stream_base::decorator([wants_binary](websocket::response_type& response) {
            response.set(http::field::server, "corrald");
            if (wants_binary) response.set(http::field::sec_websocket_protocol, "binary");
        }));
        m_stream.read_message_max(1024 * 1024);
        m_stream.accept(upgrade, ec);
        if (ec) return;
        m_open = true;
        read_next();
        // Frames queued before the handshake go out now.
        asio::post(*m_io, [self = this->shared_from_this()] { self->write_next(); });
        m_io->run();
        guarded("on_close", [&] {
            if (m_handlers.on_close) m_handlers.on_close();
        });
    }

private:
    /// Runs a route's callback; an exception from it is logged (with a request id) and ends the
    /// session instead of the process. False when it threw.
    template <class Call>
    static bool guarded(const char* what, Call call) {
        try {
            call();
            return true;
        } catch (const std::exception& error) {
            log_error("WebSocket {}: {} (request id {})", what, error.what(), next_request_id());
        } catch (...) {
            log_error("WebSocket {}: an exception that is not a std::exception (request id {})", what,
                      next_request_id());
        }
        return false;
    }

    void enqueue(std::string data, bool binary) {
        asio::post(*m_io, [self = this->shared_from_this(), data = std::move(data), binary]() mutable {
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
                             [self = this->shared_from_this()](beast::error_code ec, size_t) {
                                 self->m_writing = false;
                                 self->m_queued_bytes -= self->m_queue.front().data.size();
                                 self->m_queue.pop_front();
                                 if (ec) {
                                     self->m_open = false;
                                     self->m_waiter = {};
                                     return;
                                 }
                                 if (self->m_waiter.ready && self->m_queued_bytes < self->m_waiter.bytes)
                                     std::exchange(self->m_waiter, {}).ready();
                                 self->write_next();
                             });
    }
    void do_close() {
        if (!m_open) return;
        m_open = false;
        m_stream.async_close(websocket::close_code::normal, [self = this->shared_from_this()](beast::error_code) {});
    }
    void read_next() {
        m_stream.async_read(m_buffer, [self = this->shared_from_this()](beast::error_code ec, size_t) {
            if (ec) {
                self->m_open = false;
                beast::error_code ignored;
                beast::get_lowest_layer(self->m_stream).close(ignored);
                return;
            }
            std::string data = beast::buffers_to_string(self->m_buffer.data());
            self->m_buffer.consume(self->m_buffer.size());
            const bool binary = self->m_stream.got_binary();
            const bool handled = guarded("on_message", [&] {
                if (self->m_handlers.on_message) self->m_handlers.on_message(data, binary);
            });
            if (!handled) {
                self->do_close();
                return;
            }
            self->read_next();
        });
    }

    struct Frame {
        std::string data;
        bool binary;
    };
    std::shared_ptr<asio::io_context> m_io;  // before m_stream: outlives it
    websocket::stream<Stream> m_stream;
    beast::flat_buffer m_buffer;
    WebSocketHandlers m_handlers;
    // Touched only on the io thread.
    std::deque<Frame> m_queue;
    size_t m_queued_bytes = 0;
    struct Waiter {
        size_t bytes = 0;
        std::function<void()> ready;
    };
    Waiter m_waiter;  // when_queue_below()'s, until the queue drains below its mark
    bool m_open = false;
    bool m_writing = false;
    bool m_close_requested = false;
};

/// What serving one connection needs from its server.
struct ServeContext {
    const Router& router;
    const RequestGate& gate;
    Origin origin;
    const std::atomic<bool>& stopping;
};

using Clock = std::chrono::steady_clock;
/// No deadline: the unix socket's clients are local and trusted to end what they start.
constexpr std::optional<Clock::duration> k_no_deadline;

/// Runs one asynchronous operation on `stream` to completion on the connection's io_context:
/// start(handler) starts it, and `timeout` (when given) cancels it, which completes it with
/// timed_out. Reads and writes go through this on TCP so that no client holds a thread by
/// sending or taking bytes slowly.
template <class Stream, class Start>
beast::error_code run_timed(asio::io_context& io, Stream& stream, std::optional<Clock::duration> timeout,
                            Start start) {
    asio::steady_timer timer(io);
    beast::error_code result;
    bool done = false;
    bool timed_out = false;
    if (timeout) {
        timer.expires_after(*timeout);
        timer.async_wait([&](beast::error_code ec) {
            if (ec || done) return;
            timed_out = true;
            beast::error_code ignored;
            beast::get_lowest_layer(stream).cancel(ignored);
        });
    }
    start([&](beast::error_code ec, size_t) {
        done = true;
        result = ec;
        timer.cancel();
    });
    io.run();
    io.restart();
    return timed_out ? beast::error_code(asio::error::timed_out) : result;
}

/// Writes a whole message within the idle deadline (when there is one).
template <class Stream, class Message>
beast::error_code write_message(asio::io_context& io, Stream& stream, Message& message,
                                std::optional<Clock::duration> deadline) {
    return run_timed(io, stream, deadline, [&](auto handler) { http::async_write(stream, message, handler); });
}

/// The body of a request to a streaming route, read straight from the connection.
template <class Stream>
class StreamBodyReader final : public BodyReader {
public:
    /// `expects_continue`: the client waits for "100 Continue" before it sends the body; it is
    /// sent on the first read(), so that a route that refuses first (name taken, too large) does
    /// so before the client sent a byte.
    StreamBodyReader(asio::io_context& io, Stream& stream, beast::flat_buffer& buffer,
                     http::request_parser<http::empty_body>&& header, bool expects_continue,
                     std::optional<Clock::duration> deadline)
        : m_io(io), m_stream(stream), m_buffer(buffer), m_parser(std::move(header)),
          m_continue_pending(expects_continue && !m_parser.is_done()), m_deadline(deadline) {
        // The route sets its own limits (pool space, the configured maximum).
        m_parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    }

    std::optional<uint64_t> content_length() const override {
        if (auto length = m_parser.content_length()) return *length;
        return std::nullopt;
    }

    Result<size_t> read(std::span<char> out) override {
        if (m_continue_pending) {
            m_continue_pending = false;
            http::response<http::empty_body> go_on{http::status::continue_, m_parser.get().version()};
            if (auto ec = write_message(m_io, m_stream, go_on, m_deadline))
                return fail(fmt::format("sending 100 Continue: {}", ec.message()), ECONNABORTED);
        }
        while (!m_parser.is_done() && !out.empty()) {
            m_parser.get().body().data = out.data();
            m_parser.get().body().size = out.size();
            auto ec = run_timed(m_io, m_stream, m_deadline, [&](auto handler) {
                http::async_read_some(m_stream, m_buffer, m_parser, handler);
            });
            if (ec == http::error::need_buffer) ec = {};
            const size_t got = out.size() - m_parser.get().body().size;
            m_received += got;
            if (ec == asio::error::timed_out)
                return fail(fmt::format("the client sent no byte of the body for {} s",
                                        std::chrono::duration_cast<std::chrono::seconds>(*m_deadline).count()),
                            ETIMEDOUT);
            if (ec) return fail(fmt::format("reading the request body: {}", ec.message()), ECONNABORTED);
            if (m_deadline) {
                const auto elapsed = Clock::now() - m_start;
                const double seconds = std::chrono::duration<double>(elapsed).count();
                if (elapsed > k_slow_body_grace && double(m_received) < seconds * double(k_min_body_rate))
                    return fail(fmt::format("the client sent the body slower than {} KiB/s", k_min_body_rate / 1024),
                                ETIMEDOUT);
            }
            if (got > 0) return got;
        }
        return size_t{0};
    }

    /// Whether the whole body was read (else the connection cannot carry another request).
    bool done() const { return m_parser.is_done(); }

private:
    asio::io_context& m_io;
    Stream& m_stream;
    beast::flat_buffer& m_buffer;
    http::request_parser<http::buffer_body> m_parser;
    bool m_continue_pending;
    std::optional<Clock::duration> m_deadline;
    Clock::time_point m_start = Clock::now();
    uint64_t m_received = 0;
};

/// The body of a streamed answer, written straight to the connection after its header.
template <class Stream>
class StreamBodyWriter final : public BodyWriter {
public:
    StreamBodyWriter(asio::io_context& io, Stream& stream, const StreamResponse& response, unsigned version,
                     bool keep_alive, std::optional<Clock::duration> deadline)
        : m_io(io), m_stream(stream), m_deadline(deadline) {
        m_response.version(version);
        m_response.result(static_cast<http::status>(response.head.status));
        m_response.set(http::field::server, "corrald");
        m_response.set(http::field::content_type, response.head.content_type);
        for (const auto& [name, value] : response.head.headers) m_response.set(name, value);
        if (response.content_length)
            m_response.content_length(*response.content_length);
        else
            m_response.chunked(true);
        m_response.keep_alive(keep_alive);
        m_response.body().data = nullptr;
        m_response.body().more = true;
    }

    Result<void> start() {
        auto ec = run_timed(m_io, m_stream, m_deadline,
                            [&](auto handler) { http::async_write_header(m_stream, m_serializer, handler); });
        if (ec) return fail(fmt::format("sending the answer's header: {}", ec.message()), ECONNABORTED);
        return {};
    }

    Result<void> write(std::string_view data) override {
        if (data.empty()) return {};
        m_response.body().data = const_cast<char*>(data.data());
        m_response.body().size = data.size();
        m_response.body().more = true;
        auto ec = run_timed(m_io, m_stream, m_deadline,
                            [&](auto handler) { http::async_write(m_stream, m_serializer, handler); });
        if (ec == http::error::need_buffer) ec = {};
        if (ec) return fail(fmt::format("sending the answer: {}", ec.message()), ECONNABORTED);
        return {};
    }

    Result<void> finish() {
        m_response.body().data = nullptr;
        m_response.body().size = 0;
        m_response.body().more = false;
        auto ec = run_timed(m_io, m_stream, m_deadline,
                            [&](auto handler) { http::async_write(m_stream, m_serializer, handler); });
        if (ec) return fail(fmt::format("ending the answer: {}", ec.message()), ECONNABORTED);
        return {};
    }

private:
    asio::io_context& m_io;
    Stream& m_stream;
    std::optional<Clock::duration> m_deadline;
    http::response<http::buffer_body> m_response;
    http::response_serializer<http::buffer_body> m_serializer{m_response};
};

/// Whether the request announced a body (its bytes follow the header).
bool has_body(const http::request_parser<http::empty_body>& parser) {
    return !parser.is_done();
}

/// After an answer sent before the request's body was read: stop sending, and read (and drop)
/// what the client still sends for a moment, so that closing does not reset the connection
/// before the client read the answer. Bounded in time and bytes.
template <class Stream>
void drain_and_close(Stream& stream) {
    auto& socket = beast::get_lowest_layer(stream);
    beast::error_code ec;
    socket.shutdown(asio::socket_base::shutdown_send, ec);
    char sink[16384];
    size_t drained = 0;
    for (int i = 0; i < 8 && drained < (8u << 20); ++i) {
        pollfd waiting{socket.native_handle(), POLLIN, 0};
        if (::poll(&waiting, 1, 250) <= 0) break;
        ssize_t n = ::recv(socket.native_handle(), sink, sizeof sink, MSG_DONTWAIT);
        if (n <= 0) break;
        drained += size_t(n);
    }
}

/// Serves HTTP requests (and at most one WebSocket upgrade) on an established stream until the
/// peer closes, asks to, or the server stops. `buffer` holds bytes already read from it.
///
/// Each request's header is read first (on TCP within a deadline), the gate (authentication)
/// looks at it, and only then is the body read: into memory for ordinary routes (16 MiB at
/// most), or handed to a streaming route as a reader. On TCP every read and write has a
/// deadline, so a slow or silent client loses its connection instead of holding a thread.
template <class Stream>
void serve_http(std::shared_ptr<asio::io_context> io, Stream& stream, beast::flat_buffer& buffer,
                const ServeContext& context) {
    const bool tcp = context.origin == Origin::Tls;
    const auto idle = tcp ? std::optional<Clock::duration>(k_io_idle_timeout) : k_no_deadline;
    bool first = true;
    // An answer sent before the body was read leaves the body in the stream: drain it, then close.
    auto refuse = [&](const HttpResponse& response, unsigned version, bool body_pending) {
        auto raw = to_raw(response, version, false);
        write_message(*io, stream, raw, idle);
        if (body_pending) drain_and_close(stream);
    };
    while (!context.stopping) {
        http::request_parser<http::empty_body> header;
        // The body's size is checked below, once we know which route takes it.
        header.body_limit(std::numeric_limits<std::uint64_t>::max());
        const auto header_deadline =
            tcp ? std::optional<Clock::duration>(first ? k_header_timeout : k_keep_alive_timeout) : k_no_deadline;
        first = false;
        auto ec = run_timed(*io, stream, header_deadline,
                            [&](auto handler) { http::async_read_header(stream, buffer, header, handler); });
        if (ec) {
            if (ec == asio::error::timed_out) log_debug("dropping a connection: no complete request header in time");
            break;
        }
        // `head` is read before the parser moves on to the body (it moves the message along).
        const auto& head = header.get();
        const unsigned version = head.version();
        const bool wants_keep_alive = head.keep_alive();
        const bool expects_continue = beast::iequals(head[http::field::expect], "100-continue");
        const bool body_pending = has_body(header);
        bool bad_target = false;
        HttpRequest request = to_request(head.base(), bad_target);
        request.origin = context.origin;
        if (bad_target) {
            refuse(error_response({400, "", "malformed percent-encoding in the request target"}), version, body_pending);
            break;
        }
        if (context.gate) {
            if (auto refusal = context.gate(request)) {
                // Refused before a byte of the body was read; on TCP the connection ends with it, so
                // a client without a token cannot hold it with one refused request after another.
                const bool keep_alive = !tcp && !body_pending && wants_keep_alive && !request.websocket_upgrade;
                auto raw = to_raw(*refusal, version, keep_alive);
                write_message(*io, stream, raw, idle);
                if (keep_alive) continue;
                if (body_pending) drain_and_close(stream);
                break;
            }
        }
        if (request.websocket_upgrade) {
            http::request<http::string_body> upgrade(head.base());
            PathParams params;
            ApiError error;
            const WebSocketHandler* handler = context.router.find_websocket(request, params, error);
            if (!handler) {
                refuse(error_response(error), version, body_pending);
                break;
            }
            // The session takes the stream over; `stream` is left moved-from.
            auto session = std::make_shared<WebSocketSession<Stream>>(io, std::move(stream));
            ApiResult<WebSocketHandlers> handlers;
            try {
                handlers = (*handler)(session, request, params);
            } catch (const std::exception& error) {
                auto raw = to_raw(internal_error(request, error.what()), version, false);
                http::write(session->next_layer(), raw, ec);
                close_stream(session->next_layer());
                return;
            }
            if (handlers) {
                session->run(upgrade, std::move(*handlers));
                return;
            }
            // Refused before the handshake: a plain HTTP answer on the stream the session holds.
            auto raw = to_raw(error_response(handlers.error()), version, false);
            http::write(session->next_layer(), raw, ec);
            close_stream(session->next_layer());
            return;
        }
        // The client may wait for this before it sends the body (curl does for large ones).
        auto send_continue = [&] {
            if (!body_pending || !expects_continue) return true;
            http::response<http::empty_body> go_on{http::status::continue_, version};
            return !write_message(*io, stream, go_on, idle);
        };
        PathParams params;
        if (const StreamHandler* streaming = context.router.find_streaming(request, params)) {
            StreamBodyReader<Stream> body(*io, stream, buffer, std::move(header), expects_continue, idle);
            // The last line for a streaming route (Router::handle has its own for plain ones): an
            // exception becomes a 500, never the end of corrald.
            ApiResult<StreamResponse> answer = std::unexpected(ApiError{500, "", "internal error"});
            try {
                answer = (*streaming)(request, params, body);
            } catch (const std::exception& error) {
                log_error("{} {}: {}", request.method, request.path, error.what());
                answer = std::unexpected(ApiError{500, "", "internal error while serving the request (see corrald's log)"});
            }
            // A body the route did not read to its end cannot be skipped: the connection ends.
            const bool keep_alive = wants_keep_alive && body.done();
            if (!answer) {
                refuse(error_response(answer.error()), version, !body.done());
                break;
            }
            if (!answer->body) {
                auto raw = to_raw(answer->head, version, keep_alive);
                if (write_message(*io, stream, raw, idle) || !keep_alive) {
                    if (!body.done()) drain_and_close(stream);
                    break;
                }
                continue;
            }
            StreamBodyWriter<Stream> writer(*io, stream, *answer, version, keep_alive, idle);
            auto sent = writer.start();
            if (sent) {
                try {
                    sent = answer->body(writer);
                } catch (const std::exception& error) {
                    sent = fail(fmt::format("internal error: {}", error.what()), EIO);
                }
            }
            if (sent) sent = writer.finish();
            if (!sent) {
                log_debug("streaming {} {}: {}", request.method, request.path, sent.error().describe());
                break;
            }
            if (!keep_alive) break;
            continue;
        }
        if (auto length = header.content_length(); length && *length > k_body_limit) {
            refuse(error_response({413, "", "request body larger than 16 MiB"}), version, body_pending);
            break;
        }
        if (!send_continue()) break;
        http::request_parser<http::string_body> parser(std::move(header));
        parser.body_limit(k_body_limit);
        if (body_pending) {
            // The whole body within the idle deadline plus the time it takes at the minimum rate.
            const auto deadline =
                tcp ? std::optional<Clock::duration>(k_io_idle_timeout +
                                                     std::chrono::seconds(k_body_limit / k_min_body_rate))
                    : k_no_deadline;
            ec = run_timed(*io, stream, deadline, [&](auto handler) { http::async_read(stream, buffer, parser, handler); });
            if (ec == http::error::body_limit) {
                refuse(error_response({413, "", "request body larger than 16 MiB"}), version, true);
                break;
            }
            if (ec) break;
        }
        request.body = std::move(parser.get().body());
        HttpResponse response = context.router.handle(request);
        const bool keep_alive = wants_keep_alive;
        auto raw = to_raw(response, version, keep_alive);
        ec = write_message(*io, stream, raw, idle);
        if (ec || !keep_alive) break;
    }
    close_stream(stream);
}

/// A TCP connection: TLS only. Detects a plain-HTTP client and tells it to use https, completes
/// the TLS handshake (within k_handshake_timeout), then serves HTTP over the TLS stream.
void serve_tls_connection(int fd, bool ipv6, TlsContext& tls, const ServeContext& context) {
    auto io = std::make_shared<asio::io_context>();
    TcpSocket socket(*io);
    socket.assign(ipv6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), fd);
    beast::flat_buffer buffer;

    bool is_tls = false;
    beast::error_code ec = run_timed(*io, socket, k_handshake_timeout, [&](auto finish) {
        beast::async_detect_ssl(socket, buffer, [&, finish](beast::error_code result, bool tls_record) {
            is_tls = tls_record;
            finish(result, 0);
        });
    });
    if (ec) {
        socket.shutdown(TcpSocket::shutdown_both, ec);
        return;
    }
    if (!is_tls) {
        HttpResponse refusal =
            error_response({400, "", "this corrald port speaks only TLS: use https:// (and a bearer token)"});
        auto raw = to_raw(refusal, 11, false);
        http::write(socket, raw, ec);
        socket.shutdown(TcpSocket::shutdown_send, ec);
        // Read what the client still sends (the rest of its request) for a moment, so that
        // closing does not reset the connection before it read the answer.
        char sink[4096];
        for (int i = 0; i < 16; ++i) {
            pollfd waiting{socket.native_handle(), POLLIN, 0};
            if (::poll(&waiting, 1, 500) <= 0) break;
            if (::recv(socket.native_handle(), sink, sizeof sink, MSG_DONTWAIT) <= 0) break;
        }
        socket.shutdown(TcpSocket::shutdown_both, ec);
        return;
    }

    TlsStream stream(std::move(socket), tls.native());
    ec = run_timed(*io, stream, k_handshake_timeout, [&](auto finish) {
        stream.async_handshake(ssl::stream_base::server, buffer.data(),
                               [&, finish](beast::error_code result, size_t used) {
                                   buffer.consume(used);
                                   finish(result, used);
                               });
    });
    if (ec) {
        log_debug("TLS handshake failed: {}", ec.message());
        close_stream(stream);
        return;
    }
    serve_http(io, stream, buffer, context);
}

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::listen_unix(const std::filesystem::path& path, unsigned mode,
                                                            const Router& router) {
    auto fd = TRY(bind_unix(path, mode));
    auto server = std::unique_ptr<HttpServer>(new HttpServer(std::move(fd), path.string(), router));
    server->m_socket_path = path;
    return server;
}

std::unique_ptr<HttpServer> HttpServer::serve_tls(TcpListener listener, TlsContext& tls, const Router& router,
                                                  RequestGate gate) {
    const bool ipv6 = listener.address.ipv6;
    auto server = std::unique_ptr<HttpServer>(
        new HttpServer(std::move(listener.fd), listener.address.to_string(), router));
    server->m_tls = &tls;
    server->m_ipv6 = ipv6;
    server->m_gate = std::move(gate);
    return server;
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::start() {
    m_accept_thread = std::thread([this] { accept_loop(); });
}

namespace {

/// The client's address without the port ("192.0.2.7", "2001:db8::1"), the key of the
/// per-client connection limit.
std::string client_address(const sockaddr_storage& peer) {
    char text[INET6_ADDRSTRLEN] = "?";
    if (peer.ss_family == AF_INET)
        ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr, text, sizeof text);
    else if (peer.ss_family == AF_INET6)
        ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr, text, sizeof text);
    return text;
}

}  // namespace

void HttpServer::accept_loop() {
    while (!m_stopping) {
        pollfd waiting{m_listen.get(), POLLIN, 0};
        // A timeout so that stop() is noticed without another wake-up fd.
        if (::poll(&waiting, 1, 200) <= 0) continue;
        sockaddr_storage peer{};
        socklen_t peer_length = sizeof peer;
        int fd = ::accept4(m_listen.get(), reinterpret_cast<sockaddr*>(&peer), &peer_length, SOCK_CLOEXEC);
        if (fd < 0) continue;
        const std::string client = m_tls ? client_address(peer) : std::string();
        std::lock_guard lock(m_mutex);
        // Reap finished connections so the list stays as long as the open ones.
        size_t from_client = 0;
        for (auto it = m_connections.begin(); it != m_connections.end();) {
            if (it->done) {
                it->thread.join();
                it = m_connections.erase(it);
            } else {
                if (it->client == client) ++from_client;
                ++it;
            }
        }
        if (m_tls && (m_connections.size() >= k_max_tcp_connections || from_client >= k_max_tcp_connections_per_client)) {
            ::close(fd);
            note_refusal(from_client >= k_max_tcp_connections_per_client ? client : std::string());
            continue;
        }
        auto& connection = m_connections.emplace_back();
        connection.fd = fd;
        connection.client = client;
        try {
            connection.thread = std::thread([this, fd, &connection] {
                // The last line of a connection: whatever escapes ends this connection only.
                try {
                    serve(fd);
                } catch (const std::exception& error) {
                    log_error("{}: connection failed: {} (request id {})", m_address, error.what(), next_request_id());
                }
                connection.done = true;
            });
        } catch (const std::system_error& error) {
            // Out of threads: refuse this connection, keep serving the others.
            log_error("{}: cannot start a thread for a connection: {}", m_address, error.what());
            ::close(fd);
            m_connections.pop_back();
        }
    }
}

void HttpServer::note_refusal(const std::string& client) {
    ++m_refused;
    if (!client.empty()) m_last_refused_client = client;
    const auto now = std::chrono::steady_clock::now();
    if (m_refusal_logged_at && now - *m_refusal_logged_at < k_refusal_log_period) return;
    log_warning("{}: refused {} connection(s) since the last such line ({} open; at most {} in all and {} per client "
                "address{})",
                m_address, m_refused, m_connections.size(), k_max_tcp_connections, k_max_tcp_connections_per_client,
                m_last_refused_client.empty() ? "" : "; the last over the per-client limit came from " + m_last_refused_client);
    m_refused = 0;
    m_last_refused_client.clear();
    m_refusal_logged_at = now;
}

void HttpServer::serve(int fd) {
    if (m_tls) {
        serve_tls_connection(fd, m_ipv6, *m_tls, ServeContext{m_router, m_gate, Origin::Tls, m_stopping});
        return;
    }
    auto io = std::make_shared<asio::io_context>();
    UnixSocket socket(*io);
    socket.assign(asio::local::stream_protocol(), fd);
    beast::flat_buffer buffer;
    serve_http(io, socket, buffer, ServeContext{m_router, m_gate, Origin::UnixSocket, m_stopping});
}

void HttpServer::stop() {
    if (m_stopping.exchange(true)) return;
    if (m_accept_thread.joinable()) m_accept_thread.join();
    std::lock_guard lock(m_mutex);
    // Unblock connections waiting in read(); they see the error and end.
    for (auto& connection : m_connections) ::shutdown(connection.fd, SHUT_RDWR);
    for (auto& connection : m_connections) connection.thread.join();
    m_connections.clear();
    if (!m_socket_path.empty()) ::unlink(m_socket_path.c_str());
}

}  // namespace corral::daemon
