#include "base/unix_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
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
    if (auto checked = unix_socket_address(path); !checked)
        return fail(checked.error());
    // The socket is bound under a private name and linked to `path` once it listens: whoever
    // waits for the file (a test, corrald waiting for its VMs' monitors) then never finds it
    // there with nobody listening yet, which connect answers with ECONNREFUSED. link() fails on
    // an existing file, as bind() would. A directory too deep for the private name binds `path`
    // itself, as before.
    static std::atomic<unsigned> s_private_names{0};
    std::filesystem::path private_path =
        path.parent_path() / fmt::format(".corral-bind-{}-{}", ::getpid(), s_private_names++);
    bool publish = private_path.native().size() <= k_unix_path_max;
    const std::filesystem::path& bound = publish ? private_path : path;
    auto address = TRY(unix_socket_address(bound));
    UniqueFd fd(::socket(AF_UNIX, socket_flags(options.mode), 0));
    if (!fd.valid()) return fail_errno("socket");
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
        return fail_errno(fmt::format("cannot bind {}", path.native()));
    struct RemovePrivateName {
        const char* name;
        ~RemovePrivateName() {
            if (name)
                ::unlink(name);
        }
    } remove_private_name{publish ? private_path.c_str() : nullptr};
    // Not through umask: it is process-wide, and the callers have threads.
    if (options.permissions && ::chmod(bound.c_str(), *options.permissions) != 0)
        return fail_errno(fmt::format("cannot chmod {}", path.native()));
    if (::listen(fd.get(), options.backlog) != 0) return fail_errno(fmt::format("cannot listen on {}", path.native()));
    if (publish && ::link(private_path.c_str(), path.c_str()) != 0) {
        if (errno == EEXIST)
            return fail(fmt::format("cannot bind {}", path.native()), EADDRINUSE);
        return fail_errno(fmt::format("cannot bind {}", path.native()));
    }
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
