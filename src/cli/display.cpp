#include "cli/display.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <thread>

#include <fmt/format.h>

#include "base/api_path.h"
#include "base/unique_fd.h"
#include "cli/api_client.h"

namespace corral::cli {
namespace {

namespace fs = std::filesystem;

ApiError local_error(std::string message) { return ApiError{ApiErrorKind::Protocol, std::move(message), {}, 0, {}}; }

int report(const ApiError& error, const std::string& subject) {
    std::cerr << format_error(error, subject) << '\n';
    return exit_code_for(error);
}

/// Writes `data` to a new file next to `file` and renames it over `file` (only when `replace`).
ApiResult<void> write_file(const std::string& file, const std::string& data, bool replace) {
    struct stat st {};
    if (!replace && ::lstat(file.c_str(), &st) == 0)
        return std::unexpected(local_error(fmt::format("{} already exists; choose a new file or give --force", file)));
    const fs::path target = fs::absolute(file);
    std::string temporary = (target.parent_path() / fmt::format(".{}.corral-tmp-XXXXXX", target.filename().string())).string();
    UniqueFd fd(::mkostemp(temporary.data(), O_CLOEXEC));
    if (!fd.valid())
        return std::unexpected(local_error(fmt::format("cannot create a file next to {}: {}", file, std::strerror(errno))));
    // mkostemp makes it 0600; a screenshot is as private as the screen was.
    auto failed = [&](const char* what) {
        const std::string why = std::strerror(errno);
        ::unlink(temporary.c_str());
        return std::unexpected(local_error(fmt::format("{} {}: {}", what, file, why)));
    };
    std::string_view rest = data;
    while (!rest.empty()) {
        const ssize_t n = ::write(fd.get(), rest.data(), rest.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return failed("writing");
        rest.remove_prefix(static_cast<size_t>(n));
    }
    if (::fsync(fd.get()) != 0) return failed("writing");
    const unsigned flags = replace ? 0 : RENAME_NOREPLACE;  // never replaces a file that appeared meanwhile
    if (::renameat2(AT_FDCWD, temporary.c_str(), AT_FDCWD, target.c_str(), flags) != 0) return failed("cannot create");
    return {};
}

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
}

/// A listening TCP socket on a loopback address: "HOST:PORT" (IPv4 127.0.0.0/8, [::1] or
/// localhost), or "" for 127.0.0.1 and the first free port from 5900 (VNC display :0 upwards).
ApiResult<UniqueFd> listen_loopback(const std::string& listen, std::string& shown) {
    std::string host = "127.0.0.1";
    int first = 5900;
    int last = 5999;
    if (!listen.empty()) {
        const auto colon = listen.rfind(':');
        if (colon == std::string::npos)
            return api_fail(ApiErrorKind::BadValue, fmt::format("--listen '{}' is not HOST:PORT (e.g. 127.0.0.1:5901)", listen));
        host = listen.substr(0, colon);
        if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
        if (host == "localhost") host = "127.0.0.1";
        const std::string port_text = listen.substr(colon + 1);
        int port = -1;
        auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
        if (port_text.empty() || error != std::errc() || end != port_text.data() + port_text.size() || port < 0 || port > 65535)
            return api_fail(ApiErrorKind::BadValue, fmt::format("--listen '{}': the port must be 0 to 65535", listen));
        first = last = port;
    }
    sockaddr_storage address{};
    socklen_t length = 0;
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
        if ((ntohl(v4.s_addr) >> 24) != 127)
            return api_fail(ApiErrorKind::BadValue,
                            fmt::format("--listen {}: only a loopback address (127.0.0.0/8, [::1]): the port has no "
                                        "password, anyone who reaches it sees and types on the VM's screen",
                                        host));
        auto* in = reinterpret_cast<sockaddr_in*>(&address);
        in->sin_family = AF_INET;
        in->sin_addr = v4;
        length = sizeof(sockaddr_in);
    } else if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&v6))
            return api_fail(ApiErrorKind::BadValue,
                            fmt::format("--listen [{}]: only a loopback address (127.0.0.0/8, [::1]): the port has no "
                                        "password, anyone who reaches it sees and types on the VM's screen",
                                        host));
        auto* in = reinterpret_cast<sockaddr_in6*>(&address);
        in->sin6_family = AF_INET6;
        in->sin6_addr = v6;
        length = sizeof(sockaddr_in6);
    } else {
        return api_fail(ApiErrorKind::BadValue, fmt::format("--listen: '{}' is not an IP address (give 127.0.0.1 or [::1])", host));
    }
    int last_errno = 0;
    for (int port = first; port <= last; ++port) {
        UniqueFd fd(::socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd.valid()) return api_fail(ApiErrorKind::Protocol, fmt::format("socket: {}", std::strerror(errno)));
        const int on = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        if (address.ss_family == AF_INET)
            reinterpret_cast<sockaddr_in*>(&address)->sin_port = htons(static_cast<uint16_t>(port));
        else
            reinterpret_cast<sockaddr_in6*>(&address)->sin6_port = htons(static_cast<uint16_t>(port));
        if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0 || ::listen(fd.get(), 16) != 0) {
            last_errno = errno;
            continue;
        }
        sockaddr_storage bound{};
        socklen_t bound_length = sizeof bound;
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &bound_length);
        const int actual = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                                            : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
        shown = address.ss_family == AF_INET ? fmt::format("{}:{}", host, actual) : fmt::format("[{}]:{}", host, actual);
        return fd;
    }
    if (first == last)
        return api_fail(ApiErrorKind::Protocol, fmt::format("cannot listen on {}: {}", listen, std::strerror(last_errno)));
    return api_fail(ApiErrorKind::Protocol, fmt::format("no free port from {} to {} on {} (give --listen {}:PORT)", first,
                                                        last, host, host));
}

/// One viewer: its own WebSocket to corrald, bytes both ways until either side ends.
void serve_viewer(const Endpoint& endpoint, const std::string& target, const std::string& vm, UniqueFd viewer) {
    auto session = WebSocketSession::connect(endpoint, target);
    if (!session) {
        std::cerr << format_error(session.error(), vm) << '\n';
        return;
    }
    WebSocketSession& ws = **session;
    std::thread reader([&] {
        char buffer[16384];
        for (;;) {
            const ssize_t n = ::recv(viewer.get(), buffer, sizeof buffer, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) break;
            ws.send(std::string(buffer, static_cast<size_t>(n)));
        }
        ws.close();
    });
    auto ended = ws.run([&](std::string_view data, bool binary) {
        if (binary)
            send_all(viewer.get(), data);
        else
            std::cerr << fmt::format("corral: {}: {}\n", vm, data);
    });
    // Wakes the reader (its recv returns 0) whichever side ended first.
    ::shutdown(viewer.get(), SHUT_RDWR);
    reader.join();
    if (!ended) std::cerr << format_error(ended.error(), vm) << '\n';
}

}  // namespace

int run_screenshot(const Endpoint& endpoint, const Invocation& invocation) {
    ApiClient api(endpoint);
    auto response = api.send(invocation.request);
    if (!response) return report(response.error(), invocation.subject);
    if (response->status < 200 || response->status >= 300) return report(error_from_response(*response), invocation.subject);
    static constexpr std::string_view k_png_signature = "\x89PNG\r\n\x1a\n";
    if (!response->body.starts_with(k_png_signature))
        return report(local_error("corrald's answer is not a PNG image"), invocation.subject);
    if (auto written = write_file(invocation.display.file, response->body, invocation.display.force); !written)
        return report(written.error(), invocation.subject);
    std::cout << fmt::format("saved {}'s screen to {}\n", invocation.subject, invocation.display.file);
    return 0;
}

int run_vnc(const Endpoint& endpoint, const Invocation& invocation) {
    const std::string& vm = invocation.subject;
    // Said at once rather than at the first viewer: a VM that is missing, stopped or without a screen.
    ApiClient api(endpoint);
    auto shown = api.call(HttpRequest{"GET", api_path(fmt::format("/vms/{}", vm)), std::nullopt});
    if (!shown) return report(shown.error(), vm);
    if (!shown->contains("display") || (*shown)["display"].is_null())
        return report(local_error(fmt::format("this VM has no display (give it one while it is stopped: corral vm edit "
                                              "{} --display 1024x768)",
                                              vm)),
                      vm);
    const std::string state = shown->value("state", "");
    if (state != "running" && state != "paused")
        return report(local_error(fmt::format("{} is {}: its screen exists only while it runs ('corral vm start {}')", vm,
                                              state, vm)),
                      vm);
    std::string where;
    auto listener = listen_loopback(invocation.display.listen, where);
    if (!listener) return report(listener.error(), vm);
    const std::string port = where.substr(where.rfind(':') + 1);
    const std::string host = where.substr(0, where.rfind(':'));
    std::cout << fmt::format("VNC for {} on {} (vncviewer {}::{}){}; Ctrl-C stops\n", vm, where, host, port,
                             invocation.display.view_only ? ", view only" : "")
              << std::flush;
    for (;;) {
        UniqueFd viewer(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!viewer.valid()) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            std::cerr << fmt::format("corral: {}: accept: {}\n", vm, std::strerror(errno));
            return 1;
        }
        std::thread(serve_viewer, std::cref(endpoint), invocation.request.target, vm, std::move(viewer)).detach();
    }
}

}  // namespace corral::cli
