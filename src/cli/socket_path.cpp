#include "cli/socket_path.h"

#include <pwd.h>
#include <unistd.h>

#include <cstdlib>

namespace corral::cli {

std::string choose_socket_path(const std::optional<std::string>& flag, const char* env_socket, bool is_root,
                               const char* home) {
    if (flag && !flag->empty()) return *flag;
    if (env_socket != nullptr && *env_socket != '\0') return env_socket;
    if (is_root) return "/var/lib/corral/corrald.sock";
    const std::string base = (home != nullptr && *home != '\0') ? home : ".";
    return base + "/.local/share/corral/corrald.sock";
}

std::string resolve_socket_path(const std::optional<std::string>& flag) {
    const char* home = std::getenv("HOME");
    if (home == nullptr || *home == '\0') {
        if (const passwd* pw = getpwuid(geteuid()); pw != nullptr) home = pw->pw_dir;
    }
    return choose_socket_path(flag, std::getenv("CORRAL_SOCKET"), geteuid() == 0, home);
}

}  // namespace corral::cli
