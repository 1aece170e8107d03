#include "cli/api_client.h"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/stream_traits.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

namespace corral::cli {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using local_socket = asio::local::stream_protocol::socket;
using tcp = asio::ip::tcp;
using tls_stream = ssl::stream<tcp::socket>;

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

ApiError remote_unreachable(const RemoteEndpoint& remote, const std::string& reason) {
    ApiError error;
    error.kind = ApiErrorKind::Unreachable;
    error.socket = remote.url();
    error.message = fmt::format("cannot reach corrald at {}: {} (is corrald running there with --listen on that port? "
                                "check --remote or CORRAL_REMOTE)",
                                remote.url(), reason);
    return error;
}

/// A refusal to talk to a server whose certificate did not pass: exit 3, like no server at all.
ApiError untrusted(const RemoteEndpoint& remote, std::string message) {
    ApiError error;
    error.kind = ApiErrorKind::Unreachable;
    error.socket = remote.url();
    error.message = std::move(message);
    return error;
}

bool is_ip_address(const std::string& host) {
    unsigned char binary[16];
    return ::inet_pton(AF_INET, host.c_str(), binary) == 1 || ::inet_pton(AF_INET6, host.c_str(), binary) == 1;
}

std::string fingerprint_of(X509* cert) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (cert == nullptr || X509_digest(cert, EVP_sha256(), digest, &length) != 1) return "?";
    std::string text;
    for (unsigned int i = 0; i < length; ++i) text += fmt::format("{}{:02X}", i ? ":" : "", digest[i]);
    return text;
}

/// The Host header's value: "h1:8443", "[::1]:8443".
std::string host_header(const RemoteEndpoint& remote) {
    const std::string url = remote.url();
    return url.substr(std::string_view("https://").size());
}

/// The client side of TLS for `remote`: TLS 1.2 or newer, and what to trust. Verification is
/// checked by hand after the handshake (verify_certificate) so that a refusal can show the
/// certificate's fingerprint; OpenSSL still verifies the chain and the name during the handshake.
ApiResult<std::unique_ptr<ssl::context>> client_context(const RemoteEndpoint& remote) {
    auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX* native = context->native_handle();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
    if (!remote.ca_cert.empty()) {
        if (SSL_CTX_load_verify_locations(native, remote.ca_cert.c_str(), nullptr) != 1)
            return api_fail(ApiErrorKind::Protocol,
                            fmt::format("--ca-cert {}: not a PEM certificate file", remote.ca_cert));
    } else if (remote.fingerprint.empty()) {
        SSL_CTX_set_default_verify_paths(native);
    }
    return context;
}

/// Whether the server's certificate passed: the pin, else OpenSSL's verdict on chain and name.
ApiResult<void> verify_certificate(tls_stream& stream, const RemoteEndpoint& remote) {
    SSL* native = stream.native_handle();
    std::unique_ptr<X509, decltype(&X509_free)> cert(SSL_get1_peer_certificate(native), X509_free);
    const std::string fingerprint = fingerprint_of(cert.get());
    if (!remote.fingerprint.empty()) {
        if (fingerprint == remote.fingerprint) return {};
        return std::unexpected(untrusted(
            remote, fmt::format("the TLS certificate of {} has SHA-256 fingerprint {}, not the pinned {}: refusing to "
                                "send the token (the certificate was replaced, or this is not your corrald)",
                                remote.url(), fingerprint, remote.fingerprint)));
    }
    const long verdict = SSL_get_verify_result(native);
    if (cert && verdict == X509_V_OK) return {};
    const std::string how =
        remote.ca_cert.empty()
            ? fmt::format("If this is corrald's own (self-signed) certificate, compare {} with the fingerprint corrald "
                          "logged at start (or 'corral host info' on that host: tls fingerprint), then pin it: "
                          "--fingerprint {} (or CORRAL_FINGERPRINT); or give the CA that signed it with --ca-cert FILE",
                          fingerprint, fingerprint)
            : fmt::format("--ca-cert {} did not sign it (its SHA-256 fingerprint is {})", remote.ca_cert, fingerprint);
    return std::unexpected(untrusted(remote, fmt::format("refusing {}: its TLS certificate cannot be verified ({}). {}",
                                                         remote.url(),
                                                         X509_verify_cert_error_string(verdict), how)));
}

/// Connects to `remote`, completes the TLS handshake and checks the certificate.
/// `connected` (when given) gets the TCP socket once connected, before the handshake.
ApiResult<void> connect_tls(tls_stream& stream, const RemoteEndpoint& remote,
                            const std::function<void(int)>& connected = {}) {
    boost::system::error_code ec;
    tcp::resolver resolver(stream.get_executor());
    const auto addresses = resolver.resolve(remote.host, std::to_string(remote.port), ec);
    if (ec) return std::unexpected(remote_unreachable(remote, fmt::format("cannot resolve {}: {}", remote.host, ec.message())));
    asio::connect(stream.lowest_layer(), addresses, ec);
    if (ec) return std::unexpected(remote_unreachable(remote, ec.message()));
    if (connected)
        connected(stream.lowest_layer().native_handle());

    SSL* native = stream.native_handle();
    X509_VERIFY_PARAM* param = SSL_get0_param(native);
    if (is_ip_address(remote.host)) {
        X509_VERIFY_PARAM_set1_ip_asc(param, remote.host.c_str());
    } else {
        SSL_set_tlsext_host_name(native, remote.host.c_str());  // SNI
        X509_VERIFY_PARAM_set1_host(param, remote.host.c_str(), 0);
    }
    stream.handshake(ssl::stream_base::client, ec);
    if (ec)
        return std::unexpected(remote_unreachable(
            remote, fmt::format("the TLS handshake failed: {} (does that port speak TLS?)", ec.message())));
    return verify_certificate(stream, remote);
}

/// The request corrald gets for `request`: JSON, one request per connection, and the token.
http::request<http::string_body> make_message(const HttpRequest& request, const Endpoint& endpoint) {
    http::request<http::string_body> message{http::string_to_verb(request.method), request.target, 11};
    message.set(http::field::host, endpoint.remote ? host_header(*endpoint.remote) : std::string("localhost"));
    message.set(http::field::user_agent, "corral-cli/0.1");
    message.set(http::field::accept, "application/json");
    if (endpoint.remote) message.set(http::field::authorization, "Bearer " + endpoint.remote->token);
    message.keep_alive(false);
    if (request.body) {
        message.set(http::field::content_type, "application/json");
        message.body() = request.body->dump();
    }
    message.prepare_payload();
    return message;
}

/// One request and its answer on a connected stream (unix socket or TLS).
template <class Stream>
ApiResult<HttpResponse> exchange(Stream& stream, const http::request<http::string_body>& message,
                                 const HttpRequest& request) {
    boost::system::error_code ec;
    http::write(stream, message, ec);
    if (ec) return std::unexpected(broken(fmt::format("sending {} {} to corrald", request.method, request.target), ec));

    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(k_body_limit);
    http::read(stream, buffer, parser, ec);
    if (ec)
        return std::unexpected(broken(fmt::format("reading corrald's answer to {} {}", request.method, request.target), ec));

    auto& response = parser.get();
    HttpResponse result;
    result.status = static_cast<int>(response.result_int());
    result.content_type = std::string(response[http::field::content_type]);
    result.body = std::move(response.body());
    beast::get_lowest_layer(stream).shutdown(asio::socket_base::shutdown_both, ec);  // best effort: the answer is complete
    return result;
}

constexpr size_t k_transfer_chunk = 1 << 20;

/// The fields every request carries (host, agent, token).
template <class Message>
void set_common_fields(Message& message, const Endpoint& endpoint) {
    message.set(http::field::host, endpoint.remote ? host_header(*endpoint.remote) : std::string("localhost"));
    message.set(http::field::user_agent, "corral-cli/0.1");
    if (endpoint.remote) message.set(http::field::authorization, "Bearer " + endpoint.remote->token);
    message.keep_alive(false);
}

/// Reads the rest of an answer whose header `header` has read into a string body.
template <class Stream>
ApiResult<HttpResponse> read_rest(Stream& stream, beast::flat_buffer& buffer,
                                  http::response_parser<http::empty_body>&& header, const std::string& what) {
    http::response_parser<http::string_body> parser(std::move(header));
    parser.body_limit(k_body_limit);
    boost::system::error_code ec;
    if (!parser.is_done()) http::read(stream, buffer, parser, ec);
    if (ec) return std::unexpected(broken(fmt::format("reading corrald's answer to {}", what), ec));
    HttpResponse result;
    result.status = static_cast<int>(parser.get().result_int());
    result.content_type = std::string(parser.get()[http::field::content_type]);
    result.body = std::move(parser.get().body());
    return result;
}

template <class Stream>
ApiResult<HttpResponse> upload_on(Stream& stream, const Endpoint& endpoint, const std::string& target, uint64_t size,
                                  const ApiClient::BodySource& source, const ApiClient::TransferProgress& progress) {
    const std::string what = "PUT " + target;
    http::request<http::buffer_body> message{http::verb::put, target, 11};
    set_common_fields(message, endpoint);
    message.set(http::field::accept, "application/json");
    message.set(http::field::content_type, "application/octet-stream");
    message.set(http::field::expect, "100-continue");
    message.content_length(size);
    message.body().data = nullptr;
    message.body().more = true;
    http::request_serializer<http::buffer_body> serializer{message};
    boost::system::error_code ec;
    http::write_header(stream, serializer, ec);
    if (ec) return std::unexpected(broken(fmt::format("sending {}", what), ec));

    // corrald answers 100 Continue once it wants the body, or refuses at once.
    beast::flat_buffer buffer;
    {
        http::response_parser<http::empty_body> header;
        http::read_header(stream, buffer, header, ec);
        if (ec) return std::unexpected(broken(fmt::format("reading corrald's answer to {}", what), ec));
        if (header.get().result() != http::status::continue_) return read_rest(stream, buffer, std::move(header), what);
    }
    std::vector<char> chunk(k_transfer_chunk);
    uint64_t sent = 0;
    while (sent < size) {
        const size_t want = size_t(std::min<uint64_t>(chunk.size(), size - sent));
        const size_t got = TRY(source(std::span<char>(chunk.data(), want)));
        if (got == 0)
            return api_fail(ApiErrorKind::Protocol,
                            fmt::format("the file ended after {} of {} bytes (did it change while sending?)", sent, size));
        message.body().data = chunk.data();
        message.body().size = got;
        message.body().more = true;
        http::write(stream, serializer, ec);
        if (ec == http::error::need_buffer) ec = {};
        if (ec) break;  // corrald may have answered and closed: its answer says why
        sent += got;
        if (progress) progress(sent, size);
    }
    if (!ec) {
        message.body().data = nullptr;
        message.body().size = 0;
        message.body().more = false;
        http::write(stream, serializer, ec);
    }
    const auto write_error = ec;
    http::response_parser<http::empty_body> header;
    http::read_header(stream, buffer, header, ec);
    if (ec)
        return std::unexpected(broken(fmt::format("sending {}", what), write_error ? write_error : ec));
    return read_rest(stream, buffer, std::move(header), what);
}

template <class Stream>
ApiResult<HttpResponse> download_on(Stream& stream, const Endpoint& endpoint, const std::string& target,
                                    const ApiClient::BodySink& sink, const ApiClient::TransferProgress& progress) {
    const std::string what = "GET " + target;
    http::request<http::empty_body> message{http::verb::get, target, 11};
    set_common_fields(message, endpoint);
    boost::system::error_code ec;
    http::write(stream, message, ec);
    if (ec) return std::unexpected(broken(fmt::format("sending {}", what), ec));
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> header;
    header.body_limit(std::numeric_limits<std::uint64_t>::max());
    http::read_header(stream, buffer, header, ec);
    if (ec) return std::unexpected(broken(fmt::format("reading corrald's answer to {}", what), ec));
    const int status = static_cast<int>(header.get().result_int());
    if (status < 200 || status >= 300) return read_rest(stream, buffer, std::move(header), what);
    HttpResponse result;
    result.status = status;
    result.content_type = std::string(header.get()[http::field::content_type]);
    const uint64_t total = header.content_length() ? *header.content_length() : 0;
    http::response_parser<http::buffer_body> parser(std::move(header));
    std::vector<char> chunk(k_transfer_chunk);
    uint64_t received = 0;
    while (!parser.is_done()) {
        parser.get().body().data = chunk.data();
        parser.get().body().size = chunk.size();
        http::read(stream, buffer, parser, ec);
        if (ec == http::error::need_buffer) ec = {};
        if (ec) return std::unexpected(broken(fmt::format("receiving {} (after {} bytes)", what, received), ec));
        const size_t got = chunk.size() - parser.get().body().size;
        if (got > 0) TRY(sink(std::string_view(chunk.data(), got)));
        received += got;
        if (progress) progress(received, total);
    }
    return result;
}

/// Cuts a connection (shutdown(), which wakes a blocked read or write) when `limit` passes
/// before it is destroyed: the synchronous Beast calls have no deadline of their own.
class Watchdog {
public:
    Watchdog(int fd, std::chrono::seconds limit) {
        m_thread = std::thread([this, fd, limit] {
            std::unique_lock lock(m_mutex);
            if (!m_wake.wait_for(lock, limit, [this] { return m_done; })) {
                m_fired = true;
                ::shutdown(fd, SHUT_RDWR);
            }
        });
    }
    ~Watchdog() {
        {
            std::lock_guard lock(m_mutex);
            m_done = true;
        }
        m_wake.notify_all();
        m_thread.join();
    }
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;
    bool fired() {
        std::lock_guard lock(m_mutex);
        return m_fired;
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_done = false;
    bool m_fired = false;
    std::thread m_thread;
};

/// Connects to the endpoint (TLS to a remote corrald, else its unix socket) and runs
/// `exchange(stream)` on the connection, which closes when it returns.
template <class Exchange>
ApiResult<HttpResponse> on_connection(const Endpoint& endpoint, Exchange&& exchange) {
    asio::io_context io;
    if (endpoint.remote) {
        const RemoteEndpoint& remote = *endpoint.remote;
        auto context = TRY(client_context(remote));
        tls_stream stream(io, *context);
        std::optional<Watchdog> watchdog;
        auto exchanged = [&]() -> ApiResult<HttpResponse> {
            TRY(connect_tls(stream, remote, [&](int fd) {
                if (remote.answer_timeout.count() > 0)
                    watchdog.emplace(fd, remote.answer_timeout);
            }));
            return exchange(stream);
        }();
        if (!exchanged && watchdog && watchdog->fired())
            return api_fail(ApiErrorKind::Protocol,
                            fmt::format("{} did not answer within {} s", remote.url(), remote.answer_timeout.count()));
        return exchanged;
    }
    local_socket socket(io);
    TRY(connect_socket(socket, endpoint.socket_path));
    return exchange(socket);
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

ApiClient::ApiClient(Endpoint endpoint) : m_endpoint(std::move(endpoint)) {}

ApiClient::ApiClient(std::string socket_path) { m_endpoint.socket_path = std::move(socket_path); }

ApiResult<HttpResponse> ApiClient::send(const HttpRequest& request) {
    if (http::string_to_verb(request.method) == http::verb::unknown)
        return api_fail(ApiErrorKind::Protocol, fmt::format("unknown HTTP method {}", request.method));
    const auto message = make_message(request, m_endpoint);
    return on_connection(m_endpoint, [&](auto& stream) { return exchange(stream, message, request); });
}

ApiResult<HttpResponse> ApiClient::upload(const std::string& target, uint64_t size, const BodySource& source,
                                          const TransferProgress& progress) {
    return on_connection(m_endpoint, [&](auto& stream) {
        return upload_on(stream, m_endpoint, target, size, source, progress);
    });
}

ApiResult<HttpResponse> ApiClient::download(const std::string& target, const BodySink& sink,
                                            const TransferProgress& progress) {
    return on_connection(m_endpoint, [&](auto& stream) { return download_on(stream, m_endpoint, target, sink, progress); });
}

/// The state of a WebSocket session that does not depend on the stream under it.
struct WebSocketSession::Impl {
    explicit Impl(std::unique_ptr<ssl::context> tls_context = nullptr) : tls(std::move(tls_context)) {}
    virtual ~Impl() = default;
    virtual void start_read() = 0;
    virtual void pump() = 0;

    asio::io_context io;
    std::unique_ptr<ssl::context> tls;  // TLS sessions: outlives the stream (a member of the derived class)
    std::deque<std::pair<std::string, bool>> outbox;
    std::atomic<size_t> queued{0};  // bytes posted by send() and not yet written or dropped
    bool writing = false;
    bool close_requested = false;
    bool closing = false;
    bool finished = false;
    std::atomic<bool> aborted{false};
    asio::steady_timer close_timer{io};
    std::optional<ApiError> failure;
    const FrameHandler* on_frame = nullptr;
};

namespace {

template <class Stream>
struct StreamSession final : WebSocketSession::Impl {
    StreamSession() requires std::is_same_v<Stream, local_socket> : ws(io) {}
    explicit StreamSession(std::unique_ptr<ssl::context> context) requires std::is_same_v<Stream, tls_stream>
        : Impl(std::move(context)), ws(io, *tls) {}

    websocket::stream<Stream> ws;
    beast::flat_buffer read_buffer;

    void start_read() override {
        ws.async_read(read_buffer, [this](boost::system::error_code ec, std::size_t) {
            if (ec) {
                finished = true;
                close_timer.cancel();
                // A close by either side ends the session normally; anything else is a broken connection.
                if (ec != websocket::error::closed && ec != asio::error::operation_aborted && !closing &&
                    ec != asio::error::eof && ec != ssl::error::stream_truncated)
                    failure = broken("reading from corrald's WebSocket", ec);
                return;
            }
            const auto data = read_buffer.cdata();
            (*on_frame)(std::string_view(static_cast<const char*>(data.data()), data.size()), ws.got_binary());
            read_buffer.consume(read_buffer.size());
            start_read();
        });
    }

    void pump() override {
        if (writing || finished) return;
        if (outbox.empty()) {
            if (close_requested && !closing) {
                closing = true;
                ws.async_close(websocket::close_code::normal, [](boost::system::error_code) {
                    // The pending read completes with `closed` once the peer answers.
                });
            }
            return;
        }
        writing = true;
        ws.binary(outbox.front().second);
        ws.async_write(asio::buffer(outbox.front().first), [this](boost::system::error_code ec, std::size_t) {
            writing = false;
            queued -= outbox.front().first.size();
            outbox.pop_front();
            if (ec) {
                if (!finished && !closing) failure = broken("writing to corrald's WebSocket", ec);
                finished = true;
                beast::get_lowest_layer(ws).close(ec);
                return;
            }
            pump();
        });
    }

    /// The upgrade to `target`; a refusal carries corrald's error.
    ApiResult<void> handshake(const std::string& host, const std::string& target) {
        websocket::response_type response;
        boost::system::error_code ec;
        // Asynchronous on purpose: Boost 1.74's synchronous handshake leaves `response` empty when the
        // upgrade is refused, and the refusal's body carries the daemon's error message.
        ws.async_handshake(response, host, target, [&ec](boost::system::error_code result) { ec = result; });
        io.run();
        io.restart();
        if (ec) {
            if (response.result_int() != 0 && response.result() != http::status::switching_protocols) {
                HttpResponse refused{static_cast<int>(response.result_int()),
                                     std::string(response[http::field::content_type]), response.body()};
                return std::unexpected(error_from_response(refused));
            }
            return std::unexpected(broken(fmt::format("opening a WebSocket on {}", target), ec));
        }
        ws.read_message_max(k_body_limit);
        return {};
    }
};

}  // namespace

WebSocketSession::WebSocketSession(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}
WebSocketSession::~WebSocketSession() = default;

ApiResult<std::unique_ptr<WebSocketSession>> WebSocketSession::connect(const Endpoint& endpoint,
                                                                       const std::string& target) {
    if (endpoint.remote) {
        const RemoteEndpoint& remote = *endpoint.remote;
        auto session = std::make_unique<StreamSession<tls_stream>>(TRY(client_context(remote)));
        std::optional<Watchdog> watchdog;  // the upgrade only: the session itself may last
        TRY(connect_tls(session->ws.next_layer(), remote, [&](int fd) {
            if (remote.answer_timeout.count() > 0)
                watchdog.emplace(fd, remote.answer_timeout);
        }));
        session->ws.set_option(websocket::stream_base::decorator([token = remote.token](websocket::request_type& request) {
            request.set(http::field::authorization, "Bearer " + token);
        }));
        TRY(session->handshake(host_header(remote), target));
        return std::unique_ptr<WebSocketSession>(new WebSocketSession(std::move(session)));
    }
    auto session = std::make_unique<StreamSession<local_socket>>();
    TRY(connect_socket(session->ws.next_layer(), endpoint.socket_path));
    TRY(session->handshake("localhost", target));
    return std::unique_ptr<WebSocketSession>(new WebSocketSession(std::move(session)));
}

ApiResult<std::unique_ptr<WebSocketSession>> WebSocketSession::connect(const std::string& socket_path,
                                                                       const std::string& target) {
    Endpoint endpoint;
    endpoint.socket_path = socket_path;
    return connect(endpoint, target);
}

size_t WebSocketSession::queued_bytes() const {
    return m_impl->queued.load();
}

void WebSocketSession::send(std::string data, bool binary) {
    m_impl->queued += data.size();
    asio::post(m_impl->io, [impl = m_impl.get(), data = std::move(data), binary]() mutable {
        if (impl->finished || impl->close_requested) {
            impl->queued -= data.size();
            return;
        }
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
    if (m_impl->aborted)
        return api_fail(ApiErrorKind::Protocol, "the WebSocket was cut (no answer in time)");
    if (m_impl->failure) return std::unexpected(*m_impl->failure);
    return {};
}

void WebSocketSession::abort() {
    m_impl->aborted = true;
    m_impl->io.stop();
}

}  // namespace corral::cli
