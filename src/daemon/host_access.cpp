#include "daemon/host_access.h"

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <tuple>

#include <fmt/format.h>

#include "daemon/open_beneath.h"
#include "daemon/webhook_sender.h"

namespace corral::daemon {
namespace fs = std::filesystem;

namespace {

constexpr uint32_t k_qcow2_magic = 0x514649fb;  // "QFI\xfb"
constexpr size_t k_max_interface_name = 16;  // IFNAMSIZ, with the terminating NUL

/// The API error for a failed open_beneath of `path` (named by `field`).
ApiError open_error(int error, const std::string& field, const std::string& path, const fs::path& folder) {
    switch (error) {
        case EXDEV:
        case ELOOP:
            return {403, field,
                    fmt::format("{} '{}' leaves the allowed folder {} (through a symlink or '..'); over TCP host paths "
                                "are resolved without leaving it",
                                field, path, folder.string())};
        case ENOENT:
            return {400, field, fmt::format("{} '{}' does not exist", field, path)};
        case ENOTDIR:
            return {400, field, fmt::format("{} '{}': a part of it is not a folder", field, path)};
        case EACCES:
        case EPERM:
            return {403, field, fmt::format("{} '{}' cannot be opened: permission denied", field, path)};
        default:
            return {500, field, fmt::format("{} '{}': {}", field, path, std::strerror(error))};
    }
}

uint64_t load_be(const uint8_t* bytes, size_t count) {
    uint64_t value = 0;
    for (size_t i = 0; i < count; ++i) value = (value << 8) | bytes[i];
    return value;
}

/// True when the open file is a qcow2 image that names a backing file (qcow2 spec: magic at 0,
/// backing_file_offset at 8, backing_file_size at 16, big-endian).
bool names_backing_file(int fd) {
    uint8_t header[20] = {};
    if (::pread(fd, header, sizeof(header), 0) != static_cast<ssize_t>(sizeof(header))) return false;
    return load_be(header, 4) == k_qcow2_magic && load_be(header + 8, 8) != 0 && load_be(header + 16, 4) != 0;
}

bool is_beneath(const fs::path& inner, const fs::path& outer) {
    auto relative = inner.lexically_relative(outer);
    return !relative.empty() && *relative.begin() != "..";
}

std::string list_or_none(const std::vector<std::string>& names) {
    if (names.empty()) return "none are allowed now";
    std::string text = "allowed: ";
    for (size_t i = 0; i < names.size(); ++i) text += (i ? ", " : "") + names[i];
    return text;
}

}  // namespace

Result<std::unique_ptr<HostAccess>> HostAccess::open(const HostAccessConfig& config, const fs::path& state_dir) {
    auto access = std::make_unique<HostAccess>();
    char resolved[PATH_MAX];
    // The state folder may not exist yet (corrald checks its flags before it creates anything).
    std::error_code error;
    fs::path state_real = fs::weakly_canonical(state_dir, error);
    if (error) state_real = state_dir.lexically_normal();
    for (const auto& given : config.paths) {
        if (given.empty() || given[0] != '/')
            return fail(fmt::format("--allow-path '{}' must be an absolute folder path", given), EINVAL);
        if (!::realpath(given.c_str(), resolved))
            return fail(Error::from_errno(fmt::format("--allow-path '{}'", given)));
        fs::path real(resolved);
        // The state folder holds the TLS key, the token hashes and every VM's disks: a TCP client
        // allowed into it (or into a folder holding it) could read them out or overwrite them.
        if (is_beneath(real, state_real) || is_beneath(state_real, real))
            return fail(fmt::format("--allow-path '{}' overlaps corrald's state folder {}: allow a folder outside it",
                                    given, state_real.string()),
                        EINVAL);
        int fd = ::open(resolved, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) return fail(Error::from_errno(fmt::format("--allow-path '{}' is not a folder", given)));
        access->m_folders.push_back({fs::path(given).lexically_normal(), real, UniqueFd(fd)});
    }
    for (const auto& [flag, names, into] : {std::tuple{"--allow-bridge", &config.bridges, &access->m_bridges},
                                            std::tuple{"--allow-tap", &config.taps, &access->m_taps}}) {
        for (const auto& name : *names) {
            if (name.empty() || name.size() >= k_max_interface_name || name.find('/') != std::string::npos)
                return fail(fmt::format("{} '{}' is not an interface name (1 to 15 characters, no '/')", flag, name),
                            EINVAL);
            into->push_back(name);
        }
    }
    for (const auto& prefix : config.webhooks) {
        if (auto problem = webhook_url_problem(prefix))
            return fail(fmt::format("--allow-webhook '{}' is not a URL prefix corrald can call: {}", prefix, *problem),
                        EINVAL);
        access->m_webhooks.push_back(prefix);
    }
    return access;
}

std::string HostAccess::allowed_paths_text() const {
    std::vector<std::string> names;
    for (const auto& folder : m_folders) names.push_back(folder.given.string());
    return list_or_none(names);
}

ApiResult<HostAccess::Located> HostAccess::locate(const std::string& field, const std::string& path) const {
    if (path.empty() || path[0] != '/')
        return api_fail(400, fmt::format("{} '{}' must be an absolute path", field, path), field);
    fs::path wanted = fs::path(path).lexically_normal();
    for (const auto& folder : m_folders) {
        for (const auto* base : {&folder.given, &folder.real}) {
            if (is_beneath(wanted, *base)) return Located{&folder, wanted.lexically_relative(*base)};
        }
    }
    return api_fail(403,
                    fmt::format("{} '{}' is a path on the host: over TCP corrald takes host paths only inside the "
                                "folders its administrator allows with 'corrald --allow-path DIR' ({}); on the host, "
                                "use corrald's unix socket",
                                field, path, allowed_paths_text()),
                    field);
}

ApiResult<void> HostAccess::check_path(Origin origin, const std::string& field, const std::string& path) const {
    if (origin == Origin::UnixSocket) return {};
    TRY(locate(field, path));
    return {};
}

ApiResult<HostFile> HostAccess::open_file(Origin origin, const std::string& field, const std::string& path,
                                          HostFileKind kind) const {
    if (origin == Origin::UnixSocket) return HostFile{path, nullptr};
    auto where = TRY(locate(field, path));
    // O_PATH first: opening a device or FIFO for real could have effects of its own.
    int fd = open_beneath(where.folder->fd.get(), where.relative, O_PATH, 0);
    if (fd < 0) return std::unexpected(open_error(errno, field, path, where.folder->given));
    auto owned = std::make_shared<UniqueFd>(fd);
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return api_fail(400, fmt::format("{} '{}' is not a regular file", field, path), field);
    std::string opened = fmt::format("/proc/self/fd/{}", fd);
    UniqueFd readable(::open(opened.c_str(), O_RDONLY | O_CLOEXEC));
    if (!readable.valid()) return std::unexpected(open_error(errno, field, path, where.folder->given));
    if (kind == HostFileKind::Image && names_backing_file(readable.get()))
        return api_fail(403,
                        fmt::format("{} '{}' is a qcow2 image over a backing file, which could be anywhere on the "
                                    "host: over TCP only self-contained images are taken (flatten it with "
                                    "'qemu-img convert -O qcow2', or import it over the unix socket)",
                                    field, path),
                        field);
    return HostFile{opened, std::move(owned)};
}

ApiResult<HostFile> HostAccess::new_file(Origin origin, const std::string& field, const std::string& path) const {
    if (origin == Origin::UnixSocket) return HostFile{path, nullptr};
    auto where = TRY(locate(field, path));
    fs::path name = where.relative.filename();
    if (where.relative == "." || name.empty() || name == "." || name == "..")
        return api_fail(400, fmt::format("{} '{}' must name a file, not a folder", field, path), field);
    fs::path parent = where.relative.parent_path();
    int dirfd = open_beneath(where.folder->fd.get(), parent.empty() ? fs::path(".") : parent,
                             O_RDONLY | O_DIRECTORY, 0);
    if (dirfd < 0) return std::unexpected(open_error(errno, field, path, where.folder->given));
    auto owned = std::make_shared<UniqueFd>(dirfd);
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
        return api_fail(409, fmt::format("{} '{}' already exists", field, path), field);
    return HostFile{fmt::format("/proc/self/fd/{}/{}", dirfd, name.string()), std::move(owned)};
}

ApiResult<std::string> HostAccess::folder(Origin origin, const std::string& field, const std::string& path) const {
    if (origin == Origin::UnixSocket) return path;
    auto where = TRY(locate(field, path));
    int start = open_beneath(where.folder->fd.get(), ".", O_PATH | O_DIRECTORY, 0);
    if (start < 0) return std::unexpected(open_error(errno, field, path, where.folder->given));
    UniqueFd current(start);
    for (const auto& part : where.relative) {
        if (part == ".") continue;
        int next = open_beneath(current.get(), part, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
        if (next < 0 && errno == ENOENT) {
            if (::mkdirat(current.get(), part.c_str(), 0750) != 0 && errno != EEXIST)
                return api_fail(errno == EACCES ? 403 : 500,
                                fmt::format("{} '{}': creating {}: {}", field, path, part.string(), std::strerror(errno)),
                                field);
            next = open_beneath(current.get(), part, O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
        }
        if (next < 0) return std::unexpected(open_error(errno, field, path, where.folder->given));
        current = UniqueFd(next);
    }
    // A pool adopts every NAME.qcow2 / NAME.raw in its folder as a volume, a qcow2's backing file
    // included: files the client put there earlier (an export of crafted bytes) must not become
    // volumes standing on host files. Over TCP a pool gets a new or empty folder.
    UniqueFd listing(::open(fmt::format("/proc/self/fd/{}", current.get()).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    DIR* entries = listing.valid() ? ::fdopendir(listing.get()) : nullptr;
    if (!entries) return api_fail(500, fmt::format("{} '{}': {}", field, path, std::strerror(errno)), field);
    listing.release();  // the DIR owns it now
    bool empty = true;
    while (const dirent* entry = ::readdir(entries)) {
        std::string_view name(entry->d_name);
        if (name != "." && name != "..") empty = false;
    }
    ::closedir(entries);
    if (!empty)
        return api_fail(409,
                        fmt::format("{} '{}' is not empty: over TCP a pool gets a new or empty folder (files in it "
                                    "would become volumes)",
                                    field, path),
                        field);
    return (where.folder->real / where.relative).lexically_normal().string();
}

ApiResult<void> HostAccess::check_nics(Origin origin, const std::vector<inventory::NicRef>& nics) const {
    if (origin == Origin::UnixSocket) return {};
    for (size_t i = 0; i < nics.size(); ++i) {
        const auto& nic = nics[i];
        if (!nic.bridge.empty() && std::ranges::find(m_bridges, nic.bridge) == m_bridges.end())
            return api_fail(403,
                            fmt::format("nics[{}].bridge: bridge {} is not one a VM may join over TCP; the administrator "
                                        "allows bridges with 'corrald --allow-bridge NAME' ({})",
                                        i, nic.bridge, list_or_none(m_bridges)),
                            fmt::format("nics[{}].bridge", i));
        if (!nic.tap.empty() && std::ranges::find(m_taps, nic.tap) == m_taps.end())
            return api_fail(403,
                            fmt::format("nics[{}].tap: an existing tap is given to a VM only over corrald's unix socket, "
                                        "or over TCP when the administrator allows it with 'corrald --allow-tap NAME' "
                                        "({})",
                                        i, list_or_none(m_taps)),
                            fmt::format("nics[{}].tap", i));
    }
    return {};
}

ApiResult<void> HostAccess::check_webhook(Origin origin, const std::string& field, const std::string& url) const {
    if (origin == Origin::UnixSocket)
        return {};
    for (const auto& prefix : m_webhooks) {
        // The prefix must end where a URL part does: "http://hooks.example" must not let
        // "http://hooks.example.attacker.net/" or "http://hooks.example:8080/" through.
        if (url.starts_with(prefix) && (prefix.ends_with('/') || url.size() == prefix.size() ||
                                        std::string_view("/?#").find(url[prefix.size()]) != std::string_view::npos))
            return {};
    }
    return api_fail(403,
                    fmt::format("{} '{}': over TCP an alarm may call only URLs that start with a prefix the "
                                "administrator allows with 'corrald --allow-webhook URL-PREFIX' ({}); on the host, use "
                                "corrald's unix socket",
                                field, url, list_or_none(m_webhooks)),
                    field);
}

}  // namespace corral::daemon
