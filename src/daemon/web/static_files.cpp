#include "daemon/web/static_files.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cctype>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "daemon/open_beneath.h"

namespace corral::daemon {
namespace fs = std::filesystem;

namespace {

/// The largest file served: the bundle is a few hundred KiB; anything far bigger in the folder
/// is not ours to read into memory per request.
constexpr off_t k_max_file_bytes = 16 << 20;

void add_security_headers(HttpResponse& response) {
    // Scripts only from this origin (no inline script, no eval); xterm.js injects <style>
    // elements, hence 'unsafe-inline' for styles only. No framing (clickjacking), no referrer.
    response.headers.emplace_back("Content-Security-Policy",
                                  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                                  "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
                                  "frame-ancestors 'none'");
    response.headers.emplace_back("X-Content-Type-Options", "nosniff");
    response.headers.emplace_back("X-Frame-Options", "DENY");
    response.headers.emplace_back("Referrer-Policy", "no-referrer");
}

HttpResponse not_built_page(const fs::path& root) {
    HttpResponse response;
    response.status = 404;
    response.content_type = "text/html; charset=utf-8";
    response.body = fmt::format(
        "<!doctype html><title>Corral</title><p>The web UI is not built: corrald looks for it in {} (corrald "
        "--web-dir). Build it with <code>tools/setup</code> (which runs <code>npm ci</code> in web/ and builds "
        "the <code>web_ui</code> target). The API works without it.</p>\n",
        root.string());
    add_security_headers(response);
    return response;
}

/// Whether an Accept-Encoding value admits gzip ("gzip, deflate, br" yes; "gzip;q=0" or
/// "identity" no).
bool accepts_gzip(std::string_view accept_encoding) {
    auto trim = [](std::string_view text) {
        while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
        while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
        return text;
    };
    auto lower_equals = [](std::string_view text, std::string_view lower) {
        return text.size() == lower.size() && std::equal(text.begin(), text.end(), lower.begin(), [](char a, char b) {
                   return std::tolower(static_cast<unsigned char>(a)) == b;
               });
    };
    while (!accept_encoding.empty()) {
        const size_t comma = accept_encoding.find(',');
        std::string_view item = accept_encoding.substr(0, comma);
        accept_encoding = comma == std::string_view::npos ? std::string_view{} : accept_encoding.substr(comma + 1);
        const size_t semicolon = item.find(';');
        if (!lower_equals(trim(item.substr(0, semicolon)), "gzip"))
            continue;
        if (semicolon == std::string_view::npos)
            return true;
        // "gzip;q=0" (or q=0.0, 0.000) refuses it (RFC 9110 12.5.3); any other weight accepts.
        std::string_view weight = trim(item.substr(semicolon + 1));
        if (!weight.starts_with("q=") && !weight.starts_with("Q="))
            return true;
        weight.remove_prefix(2);
        return weight.find_first_not_of("0.") != std::string_view::npos;
    }
    return false;
}

}  // namespace

std::string content_type_for(const std::string& name) {
    static const std::pair<const char*, const char*> k_types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json"},
        {".map", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
    };
    for (const auto& [extension, type] : k_types)
        if (name.ends_with(extension))
            return type;
    return "application/octet-stream";
}

fs::path default_web_dir(const fs::path& exe) {
    std::error_code error;
    // build/src/daemon/corrald -> build/web/dist, only in a build tree (its CMakeCache.txt says so);
    // PREFIX/bin/corrald -> PREFIX/share/corral/web.
    const fs::path build = exe.parent_path() / "../..";
    if (fs::exists(build / "CMakeCache.txt", error))
        return fs::weakly_canonical(build / "web/dist", error);
    return fs::weakly_canonical(exe.parent_path() / "../share/corral/web", error);
}

StaticFiles::StaticFiles(fs::path root) : m_root(std::move(root)) {
    m_dir = UniqueFd(::open(m_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
}

// A client that accepts gzip gets NAME.gz instead when the build put one beside NAME (web/build.mjs
// precompresses the bundle: about a quarter of the bytes on the wire), with Content-Encoding: gzip.
ApiResult<HttpResponse> StaticFiles::serve(const std::string& relative, const HttpRequest& request) const {
    if (!available())
        return not_built_page(m_root);
    const std::string name = relative.empty() ? std::string("index.html") : relative;
    // No symlinks at all, and nothing above the folder: the router refused '..' already; this
    // holds even for a link someone placed inside the folder.
    UniqueFd fd(open_beneath(m_dir.get(), name, O_RDONLY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS));
    struct stat info {};
    if (!fd.valid() || ::fstat(fd.get(), &info) != 0 || !S_ISREG(info.st_mode))
        return api_fail(404, fmt::format("no such file in the web UI: /ui/{}", relative), "path");
    if (info.st_size > k_max_file_bytes)
        return api_fail(404, fmt::format("/ui/{} is not a file of the web UI", relative), "path");
    HttpResponse response;
    response.content_type = content_type_for(name);
    add_security_headers(response);
    // The precompressed twin, opened beneath the folder like the file itself (no symlinks). Only
    // beside a file that exists: a lone NAME.gz does not make NAME servable.
    const bool gzip = [&] {
        auto accept = request.headers.find("accept-encoding");
        if (accept == request.headers.end() || !accepts_gzip(accept->second))
            return false;
        UniqueFd packed(open_beneath(m_dir.get(), name + ".gz", O_RDONLY | O_NOFOLLOW, RESOLVE_NO_SYMLINKS));
        struct stat packed_info {};
        if (!packed.valid() || ::fstat(packed.get(), &packed_info) != 0 || !S_ISREG(packed_info.st_mode) ||
            packed_info.st_size > k_max_file_bytes)
            return false;
        fd = std::move(packed);
        info = packed_info;
        return true;
    }();
    // Caches keep the two encodings apart (Vary), and so do ETags.
    response.headers.emplace_back("Vary", "Accept-Encoding");
    if (gzip)
        response.headers.emplace_back("Content-Encoding", "gzip");
    const std::string etag = fmt::format("\"{:x}-{:x}{}\"", info.st_size,
                                         info.st_mtim.tv_sec * 1000000000LL + info.st_mtim.tv_nsec, gzip ? "-gz" : "");
    response.headers.emplace_back("ETag", etag);
    // Names under assets/ carry a hash of their content (esbuild [name]-[hash]): they never
    // change, so browsers keep them; index.html names the current ones and is revalidated.
    response.headers.emplace_back("Cache-Control",
                                  name.starts_with("assets/") ? "public, max-age=31536000, immutable" : "no-cache");
    if (auto match = request.headers.find("if-none-match"); match != request.headers.end() && match->second == etag) {
        response.status = 304;
        return response;
    }
    std::string body(static_cast<size_t>(info.st_size), '\0');
    size_t done = 0;
    while (done < body.size()) {
        ssize_t n = ::read(fd.get(), body.data() + done, body.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return api_fail(500,
                            fmt::format("reading /ui/{}: {}", relative, n < 0 ? std::strerror(errno) : "short file"));
        done += static_cast<size_t>(n);
    }
    response.body = std::move(body);
    return response;
}

}  // namespace corral::daemon
