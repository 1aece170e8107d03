#include "daemon/webhook_sender.h"

#include <cerrno>
#include <exception>
#include <optional>
#include <variant>

#include <fmt/format.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "base/log.h"

namespace corral::daemon {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

struct Url {
    bool tls = false;
    std::string host;  // without the brackets of an IPv6 address
    std::string port;
    std::string host_header;
    std::string target;
};

/// Splits "http[s]://HOST[:PORT][/PATH]"; a string saying what is wrong when it is not that.
std::variant<Url, std::string> parse_url(const std::string& url) {
    Url out;
    std::string_view rest = url;
    if (rest.starts_with("https://")) {
        out.tls = true;
        rest.remove_prefix(8);
    } else if (rest.starts_with("http://")) {
        rest.remove_prefix(7);
    } else {
        return std::string("it must start with http:// or https://");
    }
    const size_t slash = rest.find_first_of("/?#");
    std::string_view authority = rest.substr(0, slash);
    out.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
    if (out.target[0] != '/')
        out.target = "/" + out.target;
    if (out.target.find('#') != std::string::npos)
        out.target.resize(out.target.find('#'));
    if (authority.find('@') != std::string_view::npos)
        return std::string("it must not hold a user name or password (user@host)");
    for (char c : url)
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f)
            return std::string("it must not contain spaces or control characters");
    out.host_header = std::string(authority);
    std::string_view port;
    if (authority.starts_with("[")) {
        const size_t close = authority.find(']');
        if (close == std::string_view::npos)
            return std::string("its IPv6 address lacks the closing ]");
        out.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after[0] != ':')
                return std::string("only :PORT may follow the IPv6 address");
            port = after.substr(1);
        }
    } else {
        const size_t colon = authority.rfind(':');
        out.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos)
            port = authority.substr(colon + 1);
    }
    if (out.host.empty())
        return std::string("it names no host");
    if (!port.empty()) {
        unsigned value = 0;
        for (char c : port) {
            if (c < '0' || c > '9' || (value = value * 10 + static_cast<unsigned>(c - '0')) > 65535)
                return std::string("its port must be a number from 1 to 65535");
        }
        if (value == 0)
            return std::string("its port must be a number from 1 to 65535");
        out.port = std::string(port);
    } else {
        out.port = out.tls ? "443" : "80";
    }
    return out;
}

bool is_ip_address(const std::string& host) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

template <typename Stream>
asio::awaitable<unsigned> exchange(Stream& stream, http::request<http::string_body>& request) {
    co_await http::async_write(stream, request, asio::use_awaitable);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024);  // the answer is not used; a huge one must not fill memory
    co_await http::async_read(stream, buffer, parser, asio::use_awaitable);
    co_return parser.get().result_int();
}

}  // namespace

std::optional<std::string> webhook_url_problem(const std::string& url) {
    auto parsed = parse_url(url);
    if (auto* problem = std::get_if<std::string>(&parsed))
        return *problem;
    return std::nullopt;
}

Result<void> post_webhook(const std::string& url, const std::string& body, std::chrono::milliseconds timeout) {
    auto parsed = parse_url(url);
    if (auto* problem = std::get_if<std::string>(&parsed))
        return fail(fmt::format("webhook '{}': {}", url, *problem), EINVAL);
    const Url where = std::get<Url>(parsed);

    ssl::context tls(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
    tls.set_default_verify_paths();
    tls.set_verify_mode(ssl::verify_peer);

    http::request<http::string_body> request{http::verb::post, where.target, 11};
    request.set(http::field::host, where.host_header);
    request.set(http::field::user_agent, "corrald");
    request.set(http::field::content_type, "application/json");
    request.set(http::field::connection, "close");
    request.body() = body;
    request.prepare_payload();

    bool done = false;
    std::string error;
    unsigned status = 0;
    // Declared last: destroying it destroys an unfinished exchange (its sockets) while what the
    // exchange refers to is still alive. The whole exchange has `timeout` to finish.
    asio::io_context io;
    auto exchange_all = [&]() -> asio::awaitable<void> {
        auto executor = co_await asio::this_coro::executor;
        tcp::resolver resolver(executor);
        auto addresses = co_await resolver.async_resolve(where.host, where.port, asio::use_awaitable);
        if (where.tls) {
            beast::ssl_stream<beast::tcp_stream> stream(executor, tls);
            SSL* native = stream.native_handle();
            if (is_ip_address(where.host)) {
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native), where.host.c_str());
            } else {
                SSL_set_tlsext_host_name(native, where.host.c_str());
                X509_VERIFY_PARAM_set1_host(SSL_get0_param(native), where.host.c_str(), 0);
            }
            co_await beast::get_lowest_layer(stream).async_connect(addresses, asio::use_awaitable);
            co_await stream.async_handshake(ssl::stream_base::client, asio::use_awaitable);
            status = co_await exchange(stream, request);
        } else {
            beast::tcp_stream stream(executor);
            co_await stream.async_connect(addresses, asio::use_awaitable);
            status = co_await exchange(stream, request);
        }
    };
    asio::co_spawn(io, exchange_all, [&](std::exception_ptr failure) {
        done = true;
        if (!failure)
            return;
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            error = e.what();
        }
    });
    io.run_for(timeout);
    if (!done)
        return fail(fmt::format("{} did not answer within {} ms", url, timeout.count()), ETIMEDOUT);
    if (!error.empty())
        return fail(fmt::format("POST {}: {}", url, error), EIO);
    if (status < 200 || status > 299)
        return fail(fmt::format("POST {}: the receiver answered HTTP {}", url, status), EIO);
    return {};
}

WebhookSender::WebhookSender(Outcome outcome, WebhookPolicy policy)
    : m_outcome(std::move(outcome)), m_policy(policy), m_thread([this] { run(); }) {}

WebhookSender::~WebhookSender() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_all();
    m_thread.join();
}

void WebhookSender::post(std::string alarm, std::string url, std::string body) {
    std::optional<Delivery> dropped;
    {
        std::lock_guard lock(m_mutex);
        if (m_queue.size() >= m_policy.max_queued) {
            dropped = std::move(m_queue.front());
            m_queue.pop_front();
        }
        m_queue.push_back({std::move(alarm), std::move(url), std::move(body)});
    }
    m_wake.notify_all();
    if (dropped)
        m_outcome(dropped->alarm, dropped->url,
                  fmt::format("dropped: more than {} webhook deliveries were waiting", m_policy.max_queued));
}

void WebhookSender::run() {
    std::unique_lock lock(m_mutex);
    while (true) {
        m_wake.wait(lock, [this] { return m_stopping || !m_queue.empty(); });
        if (m_stopping)
            return;
        Delivery delivery = std::move(m_queue.front());
        m_queue.pop_front();
        std::string error;
        auto backoff = m_policy.first_backoff;
        for (unsigned attempt = 1; attempt <= m_policy.attempts; ++attempt) {
            lock.unlock();
            auto sent = post_webhook(delivery.url, delivery.body, m_policy.timeout);
            lock.lock();
            if (sent) {
                error.clear();
                break;
            }
            error = sent.error().message();
            log_warning("alarm {}: webhook attempt {} of {}: {}", delivery.alarm, attempt, m_policy.attempts, error);
            if (sent.error().errno_value() == EINVAL || attempt == m_policy.attempts)
                break;  // a malformed URL stays malformed
            if (m_wake.wait_for(lock, backoff, [this] { return m_stopping; }))
                return;
            backoff *= 2;
        }
        lock.unlock();
        m_outcome(delivery.alarm, delivery.url, error);
        lock.lock();
    }
}

}  // namespace corral::daemon
