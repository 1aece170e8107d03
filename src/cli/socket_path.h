#pragma once

#include <optional>
#include <string>

namespace corral::cli {

/// Where corrald listens, in the order the user can override it: `--socket PATH`, else
/// `$CORRAL_SOCKET`, else the daemon's default (`/var/lib/corral/corrald.sock` as root,
/// `$HOME/.local/share/corral/corrald.sock` otherwise).
std::string choose_socket_path(const std::optional<std::string>& flag, const char* env_socket, bool is_root,
                               const char* home);

/// choose_socket_path with this process's environment and effective uid.
std::string resolve_socket_path(const std::optional<std::string>& flag);

}  // namespace corral::cli
