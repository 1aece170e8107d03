#include "base/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace corral {
namespace {

int socket_flags(SocketMode mode) {
    return SOCK_STREAM | SOCK_CLOEXEC | (mode == SocketMode::NonBlocking ? SOCK_NONBLOCK : 0);
}

}  // namespace

Result<sockaddr_un> unix_socket_address(const std::filesystem::path& path) {
    const std::string& text = path.native();
    if (text.empty()) return fail("a unix socket path is empty", ENAMETOOLONG);
    if (text.size() > k_unix_path_max)
        return fail(fmt::format("socket path {} is too long for a unix socket ({} bytes, at most {})", text,
                                text.size(), k_unix_path_max),
                    ENAMETOOLONG);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, text.data(), text.size());
    return address;
}

Result<UniqueFd> connect_unix_socket(const std::filesystem::path& path, SocketMode mode) {
    auto address = TRY(unix_socket_address(path));
    UniqueFd fd(::socket(AF_UNIX, socket_flags(mode), 0));
    if (!fd.valid()) return fail_errno("socket");
    if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
        return fail_errno(fmt::format("cannot connect to {}", path.native()));
    return fd;
}

Result<UniqueFd> listen_unix_socket(const std::filesystem::path& path, const UnixListenOptions& options) {
    auto address = TRY(unix_socket_address(path));
    UniqueFd fd(::socket(AF_UNIX, socket_flags(options.mode), 0));
    if (!fd.valid()) return fail_errno("socket");
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
        return fail_errno(fmt::format("cannot bind {}", path.native()));
    // Not through umask: it is process-wide, and the callers have threads.
    if (options.permissions && ::chmod(path.c_str(), *options.permissions) != 0)
        return fail_errno(fmt::format("cannot chmod {}", path.native()));
    if (::listen(fd.get(), options.backlog) != 0) return fail_errno(fmt::format("cannot listen on {}", path.native()));
    return fd;
}

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        ssize_t put = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return false;
        data.remove_prefix(static_cast<size_t>(put));
    }
    return true;
}

}  // namespace corral
