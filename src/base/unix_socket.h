#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <cstddef>
#include <filesystem>
#include <optional>
#include <string_view>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral {

/// The longest path a unix socket address holds (sun_path less its terminating NUL): 107 on Linux.
inline constexpr size_t k_unix_path_max = sizeof(sockaddr_un::sun_path) - 1;

/// Whether a socket's calls block.
enum class SocketMode { Blocking, NonBlocking };

/// The address of the unix socket at `path`. ENAMETOOLONG naming the path and the limit when it
/// is empty or longer than k_unix_path_max bytes.
Result<sockaddr_un> unix_socket_address(const std::filesystem::path& path);

/// A stream socket (close-on-exec) connected to the unix socket at `path`. A unix socket
/// connects at once or fails; the error keeps connect's errno (ENOENT: no such file,
/// ECONNREFUSED: nobody listens, EAGAIN: a non-blocking connect met a full backlog) and names
/// the path.
Result<UniqueFd> connect_unix_socket(const std::filesystem::path& path, SocketMode mode = SocketMode::Blocking);

/// How listen_unix_socket sets up its socket.
struct UnixListenOptions {
    int backlog = 16;
    /// chmod'ed before listen, so that nobody connects under the umask's mode first.
    std::optional<mode_t> permissions;
    SocketMode mode = SocketMode::Blocking;
};

/// A stream socket (close-on-exec) bound to `path` and listening. A file already at `path`
/// fails with EADDRINUSE: whether it is stale (and may be removed) is the caller's call.
Result<UniqueFd> listen_unix_socket(const std::filesystem::path& path, const UnixListenOptions& options = {});

/// Sends all of `data` on the blocking stream socket `fd` (MSG_NOSIGNAL: a peer that went away is
/// a false return, not a SIGPIPE); false when the peer is gone or the send fails.
bool send_all(int fd, std::string_view data);

}  // namespace corral
