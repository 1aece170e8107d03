#include "vmm/migration/endpoint.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <charconv>

#include <fmt/format.h>

#include "base/unix_socket.h"

namespace corral::vmm::migration {
namespace {

Result<void> set_io_timeout(int fd, std::chrono::seconds timeout) {
    timeval value{static_cast<time_t>(timeout.count()), 0};
    if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &value, sizeof value) != 0 ||
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &value, sizeof value) != 0)
        return fail_errno("setting the migration socket's timeouts");
    return {};
}

struct AddressList {
    addrinfo* head = nullptr;
    ~AddressList() {
        if (head)
            ::freeaddrinfo(head);
    }
};

Result<void> resolve(const Endpoint& endpoint, bool passive, AddressList& list) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    std::string port = std::to_string(endpoint.port);
    int status = ::getaddrinfo(endpoint.host.c_str(), port.c_str(), &hints, &list.head);
    if (status != 0)
        return fail(ErrorKind::Invalid,
                    fmt::format("{}: cannot resolve {}: {}", endpoint.text, endpoint.host, ::gai_strerror(status)));
    return {};
}

}  // namespace

Result<Endpoint> parse_endpoint(std::string_view text, std::string_view field) {
    auto refuse = [&](std::string why) {
        return fail(ErrorKind::Invalid,
                    fmt::format("{} '{}': {}; expected unix:/ABSOLUTE/PATH or tcp:HOST:PORT", field, text, why));
    };
    Endpoint endpoint;
    endpoint.text = std::string(text);
    if (text.starts_with("unix:")) {
        endpoint.kind = Endpoint::Kind::Unix;
        endpoint.path = std::string(text.substr(5));
        if (endpoint.path.empty() || endpoint.path.front() != '/')
            return refuse("the socket path must be absolute");
        if (endpoint.path.size() > k_unix_path_max)
            return refuse(fmt::format("the socket path is longer than {} bytes", k_unix_path_max));
        return endpoint;
    }
    if (!text.starts_with("tcp:"))
        return refuse("unknown kind");
    endpoint.kind = Endpoint::Kind::Tcp;
    std::string_view rest = text.substr(4);
    size_t colon = rest.rfind(':');
    if (colon == std::string_view::npos || colon == 0)
        return refuse("a host and a port are needed");
    std::string_view host = rest.substr(0, colon), port = rest.substr(colon + 1);
    if (host.front() == '[') {
        if (host.size() < 3 || host.back() != ']')
            return refuse("an IPv6 address goes in brackets: [::1]");
        host = host.substr(1, host.size() - 2);
    }
    unsigned value = 0;
    auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (error != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
        return refuse("the port must be a number from 1 to 65535");
    endpoint.host = std::string(host);
    endpoint.port = static_cast<uint16_t>(value);
    return endpoint;
}

Result<UniqueFd> connect_endpoint(const Endpoint& endpoint, std::chrono::seconds io_timeout) {
    UniqueFd fd;
    if (endpoint.kind == Endpoint::Kind::Unix) {
        fd = TRY(connect_unix_socket(endpoint.path));
    } else {
        AddressList list;
        TRY_VOID(resolve(endpoint, false, list));
        int last_errno = 0;
        for (addrinfo* entry = list.head; entry && !fd.valid(); entry = entry->ai_next) {
            UniqueFd candidate(::socket(entry->ai_family, entry->ai_socktype | SOCK_CLOEXEC, entry->ai_protocol));
            if (!candidate.valid())
                continue;
            if (::connect(candidate.get(), entry->ai_addr, entry->ai_addrlen) == 0) {
                fd = std::move(candidate);
            } else {
                last_errno = errno;
            }
        }
        if (!fd.valid())
            return fail(Error(ErrorKind::System, fmt::format("cannot connect to {}", endpoint.text), last_errno));
        int one = 1;
        // Page records are written whole; Nagle would only delay the small control records.
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    TRY_VOID(set_io_timeout(fd.get(), io_timeout));
    return fd;
}

Result<UniqueFd> listen_endpoint(const Endpoint& endpoint) {
    if (endpoint.kind == Endpoint::Kind::Unix)
        return TRY_CONTEXT(
            listen_unix_socket(endpoint.path,
                               {.backlog = 1, .permissions = std::nullopt, .mode = SocketMode::Blocking}),
            endpoint.text);
    AddressList list;
    TRY_VOID(resolve(endpoint, true, list));
    int last_errno = 0;
    for (addrinfo* entry = list.head; entry; entry = entry->ai_next) {
        UniqueFd fd(::socket(entry->ai_family, entry->ai_socktype | SOCK_CLOEXEC, entry->ai_protocol));
        if (!fd.valid())
            continue;
        int one = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd.get(), entry->ai_addr, entry->ai_addrlen) == 0 && ::listen(fd.get(), 1) == 0)
            return fd;
        last_errno = errno;
    }
    return fail(Error(ErrorKind::System, fmt::format("cannot listen on {}", endpoint.text), last_errno));
}

Result<UniqueFd> accept_one(int listener, std::chrono::seconds io_timeout) {
    for (;;) {
        UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
        if (!fd.valid() && errno == EINTR)
            continue;
        if (!fd.valid())
            return fail_errno("accepting the migration stream");
        TRY_VOID(set_io_timeout(fd.get(), io_timeout));
        return fd;
    }
}

}  // namespace corral::vmm::migration
