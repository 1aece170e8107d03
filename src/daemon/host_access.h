#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/http/api_error.h"
#include "daemon/http/http_message.h"
#include "daemon/inventory/inventory.h"

namespace corral::daemon {

/// What the administrator lets clients over TCP name on the host (corrald --allow-path,
/// --allow-bridge, --allow-tap) or make it call (--allow-webhook). A token manages VMs; it does
/// not own the host: without these, a TCP client can name no host file, folder, bridge or tap,
/// nor any webhook URL. The unix socket may name anything
/// (whoever can open it is root or in corrald's group), as before.
struct HostAccessConfig {
    std::vector<std::string> paths;    ///< folders inside which host paths are taken over TCP
    std::vector<std::string> bridges;  ///< host bridges a VM's NIC may join over TCP
    std::vector<std::string> taps;     ///< existing taps a VM's NIC may use over TCP
    std::vector<std::string> webhooks;  ///< URL prefixes an alarm's webhook may start with over TCP
};

/// A host file or folder a request named, ready for the code that uses it: over TCP `path` is
/// /proc/self/fd/N (or /proc/self/fd/N/NAME for a file to create) of a descriptor opened beneath
/// an allowed folder, so no symlink swapped in later can redirect it; on the unix socket it is
/// the client's path. Keep the object alive until the file has been used.
struct HostFile {
    std::string path;
    std::shared_ptr<UniqueFd> fd;  ///< empty on the unix socket
};

/// Whether a file to read is an image whose content is imported (a qcow2 may name a backing file
/// elsewhere on the host, which over TCP is refused).
enum class HostFileKind { Plain, Image };

class HostAccess {
public:
    /// Nothing allowed over TCP.
    HostAccess() = default;
    /// Resolves and opens every allowed folder now (a missing one, or one that holds or lies in
    /// the state folder, fails start-up with what to change).
    static Result<std::unique_ptr<HostAccess>> open(const HostAccessConfig& config,
                                                    const std::filesystem::path& state_dir);

    /// The router's check of RoutePolicy::host_path_fields: over TCP `path` must be absolute and
    /// lie (lexically) inside an allowed folder; else a 403 naming `field` and how to allow it.
    ApiResult<void> check_path(Origin origin, const std::string& field, const std::string& path) const;
    /// An existing regular file to read, opened beneath its allowed folder over TCP.
    ApiResult<HostFile> open_file(Origin origin, const std::string& field, const std::string& path,
                                  HostFileKind kind) const;
    /// A file to create that must not exist yet: its folder is opened beneath the allowed folder.
    ApiResult<HostFile> new_file(Origin origin, const std::string& field, const std::string& path) const;
    /// A folder for a pool, created if missing. Over TCP no component may be a symlink (the pool
    /// keeps the path, so it must name the folder checked now); returns the path to use.
    ApiResult<std::string> folder(Origin origin, const std::string& field, const std::string& path) const;
    /// Over TCP every NIC's bridge (or tap) must be one the administrator allowed: 403 naming
    /// nics[i].bridge / nics[i].tap.
    ApiResult<void> check_nics(Origin origin, const std::vector<inventory::NicRef>& nics) const;
    /// Over TCP an alarm's webhook URL must start with a prefix the administrator allowed
    /// (corrald --allow-webhook): corrald sends requests there, so a token holder must not aim
    /// it at the host's or its network's private services (SSRF). A 403 naming `field` when not.
    ApiResult<void> check_webhook(Origin origin, const std::string& field, const std::string& url) const;

private:
    struct Folder {
        std::filesystem::path given;  // as on the command line, normalized
        std::filesystem::path real;   // resolved
        UniqueFd fd;                  // O_PATH, held for corrald's life
    };
    struct Located {
        const Folder* folder;
        std::filesystem::path relative;  // "." for the folder itself; never starts with ".."
    };
    ApiResult<Located> locate(const std::string& field, const std::string& path) const;
    std::string allowed_paths_text() const;

    std::vector<Folder> m_folders;
    std::vector<std::string> m_bridges;
    std::vector<std::string> m_taps;
    std::vector<std::string> m_webhooks;
};

}  // namespace corral::daemon
