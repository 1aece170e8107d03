#pragma once

#include <filesystem>
#include <string>

#include "base/unique_fd.h"
#include "daemon/http/api_error.h"
#include "daemon/http/http_message.h"

namespace corral::daemon {

/// The web UI's built files (web/ bundled by esbuild; corrald --web-dir), served at `/`
/// (index.html) and `/ui/...` on every listener, without credentials: they hold no data, the
/// API calls they make need a session. Files are opened beneath the folder (openat2
/// RESOLVE_BENEATH, no symlinks), so neither '..' nor a link planted in the folder reaches
/// anything else; only regular files are served.
class StaticFiles {
public:
    /// Serves `root`; a folder that does not exist (the UI was not built) is not an error:
    /// requests then get a 404 page saying how to build it.
    explicit StaticFiles(std::filesystem::path root);

    /// The file at `relative` ("index.html", "assets/main-AB12.js"), whose segments the router
    /// vetted already (check_wildcard_path). Content type by extension; index.html and other
    /// unhashed names revalidate (ETag, 304), files under assets/ (content-hashed names) are
    /// cached for a year; security headers on every answer (CSP, nosniff, no framing).
    ApiResult<HttpResponse> serve(const std::string& relative, const HttpRequest& request) const;

    const std::filesystem::path& root() const { return m_root; }
    bool available() const { return m_dir.valid(); }

private:
    std::filesystem::path m_root;
    UniqueFd m_dir;  // O_PATH | O_DIRECTORY on m_root, when it exists
};

/// The Content-Type for a file name by its extension; application/octet-stream when unknown.
std::string content_type_for(const std::string& name);

/// Where corrald finds the built UI when --web-dir is not given: next to the binary in a build
/// tree (build/web/dist), or in the installed share/corral/web.
std::filesystem::path default_web_dir(const std::filesystem::path& exe);

}  // namespace corral::daemon
