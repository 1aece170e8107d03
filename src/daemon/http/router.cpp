#include "daemon/http/router.h"

#include <atomic>
#include <exception>
#include <stdexcept>

#include <fmt/format.h>

#include "base/log.h"
#include "daemon/names.h"

namespace corral::daemon {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> segments;
    size_t start = 0;
    while (start < path.size()) {
        if (path[start] == '/') {
            ++start;
            continue;
        }
        size_t end = path.find('/', start);
        if (end == std::string_view::npos) end = path.size();
        segments.push_back(path.substr(start, end - start));
        start = end;
    }
    return segments;
}

/// "{name}": captures one segment.
bool is_capture(std::string_view segment) {
    return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

/// "{name*}": captures the rest of the path.
bool is_wildcard(std::string_view segment) { return is_capture(segment) && segment[segment.size() - 2] == '*'; }

std::string capture_name(std::string_view segment) {
    return std::string(segment.substr(1, segment.size() - (is_wildcard(segment) ? 3 : 2)));
}

}  // namespace

Router::Route Router::make_route(std::string method, const std::string& pattern) {
    Route route;
    route.method = std::move(method);
    for (auto segment : split_path(pattern)) {
        if (!route.wildcard.empty())
            throw std::invalid_argument(fmt::format("route {}: a {{name*}} segment must be the last", pattern));
        if (is_wildcard(segment)) route.wildcard = capture_name(segment);
        route.segments.emplace_back(segment);
    }
    return route;
}

void Router::add(std::string method, std::string pattern, Handler handler, RoutePolicy policy) {
    Route route = make_route(std::move(method), pattern);
    route.handler = std::move(handler);
    route.policy = std::move(policy);
    m_routes.push_back(std::move(route));
}

void Router::add_websocket(std::string pattern, WebSocketHandler handler) {
    Route route = make_route("GET", pattern);
    route.websocket = std::move(handler);
    m_routes.push_back(std::move(route));
}

void Router::add_streaming(std::string method, std::string pattern, StreamHandler handler) {
    Route route = make_route(std::move(method), pattern);
    // Reached only when a caller hands a streaming request to handle() (tests): say so.
    route.handler = [](const HttpRequest& request, const PathParams&) -> ApiResult<HttpResponse> {
        return api_fail(400, fmt::format("{} streams its body: it is served by the HTTP server only", request.path));
    };
    route.stream = std::move(handler);
    m_routes.push_back(std::move(route));
}

bool Router::match(const Route& route, const std::vector<std::string_view>& path, PathParams& params) {
    const size_t fixed = route.segments.size() - (route.wildcard.empty() ? 0 : 1);
    if (route.wildcard.empty() ? path.size() != fixed : path.size() < fixed) return false;
    PathParams captured;
    for (size_t i = 0; i < fixed; ++i) {
        const std::string& want = route.segments[i];
        if (is_capture(want)) {
            captured[capture_name(want)] = std::string(path[i]);
        } else if (want != path[i]) {
            return false;
        }
    }
    if (!route.wildcard.empty()) {
        // The rest of the (decoded) path, possibly empty; check_path_params vets its segments.
        std::string rest;
        for (size_t i = fixed; i < path.size(); ++i) rest.append(i == fixed ? "" : "/").append(path[i]);
        captured[route.wildcard] = std::move(rest);
    }
    params = std::move(captured);
    return true;
}

std::vector<std::pair<std::string, std::string>> Router::routes() const {
    std::vector<std::pair<std::string, std::string>> list;
    for (const auto& route : m_routes) {
        std::string pattern;
        for (const auto& segment : route.segments) pattern += "/" + segment;
        // The root route (the web UI's page) has no segment.
        list.emplace_back(route.websocket ? "WEBSOCKET" : route.method,
                          route.segments.empty() ? std::string("/") : pattern);
    }
    return list;
}

std::string next_request_id() {
    static std::atomic<uint64_t> next{1};
    return fmt::format("r-{}", next.fetch_add(1));
}

HttpResponse internal_error(const HttpRequest& request, std::string_view what) {
    std::string id = next_request_id();
    // log_line makes the quoted path and text printable.
    log_error("{} {}: {} (request id {})", request.method, request.path, what, id);
    auto response = error_response({500, "", fmt::format("internal error (request id {})", id)});
    response.headers.emplace_back("X-Request-Id", id);
    return response;
}

ApiResult<void> check_path_params(const PathParams& params, const std::string& wildcard) {
    // Every path parameter names a VM, pool, volume, image, token or task ("t-12") (a backup id
    // and an index have rules of their own), and they all follow one rule: checked here, once, so that no handler looks up, logs or echoes
    // bytes a name cannot hold ("%ff", "%00", "..").
    for (const auto& [name, value] : params) {
        if (name == wildcard) {
            TRY_VOID(check_wildcard_path(value, name));
        } else if (name == "index") {
            // A position in a list (a NIC, a rule): 0-9999 in decimal digits.
            if (value.empty() || value.size() > 4 || value.find_first_not_of("0123456789") != std::string::npos)
                return api_fail(400, "path parameter index is not a number from 0 to 9999", name);
        } else if (name == "backup") {
            // A backup's id ("web-20261206T210000Z-3f9c2a", storage/backup/repository.h): its
            // time is in capitals, so it is not a name; still no '/', '%', control or hidden names.
            const bool ok = !value.empty() && value.size() <= 128 && value.front() != '.' &&
                            value.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") ==
                                std::string::npos;
            if (!ok)
                return api_fail(400, "path parameter backup is not a backup id (1 to 128 of A-Z a-z 0-9 . _ -, not "
                                     "starting with '.')",
                                name);
        } else {
            TRY_VOID(validate_name(value, fmt::format("path parameter {}", name), name));
        }
    }
    return {};
}

ApiResult<void> check_wildcard_path(const std::string& value, const std::string& name) {
    // The path is decoded already, so "%2e%2e" arrives here as "..". What remains must not
    // climb out of the folder a handler serves, nor mean something after a second decoding.
    for (auto segment : split_path(value)) {
        bool refused = segment.front() == '.' || segment.find_first_of("\\%") != std::string_view::npos;
        for (unsigned char c : segment) refused = refused || c < 0x20 || c == 0x7f;
        if (refused)
            return api_fail(400,
                            fmt::format("path parameter {}: segment '{}' is not allowed (no '.' or '..', no hidden "
                                        "names, no '\\' or '%', no control characters)",
                                        name, segment),
                            name);
    }
    return {};
}

HttpResponse Router::handle(const HttpRequest& request) const {
    try {
        return dispatch(request);
    } catch (const std::exception& error) {
        return internal_error(request, error.what());
    } catch (...) {
        return internal_error(request, "an exception that is not a std::exception");
    }
}

HttpResponse Router::dispatch(const HttpRequest& request) const {
    auto path = split_path(request.path);
    std::string allowed;
    for (const auto& route : m_routes) {
        PathParams params;
        if (!match(route, path, params)) continue;
        if (route.websocket) {
            // A plain GET on a WebSocket route is served by a plain handler registered for the
            // same path, if any (console?tail=N); otherwise it needs the upgrade.
            continue;
        }
        if (route.method != request.method) {
            if (allowed.find(route.method) == std::string::npos)
                allowed += (allowed.empty() ? "" : ", ") + route.method;
            continue;
        }
        if (auto allowed_here = check_route_policy(route.policy, request, m_host_path_check); !allowed_here)
            return error_response(allowed_here.error());
        if (auto checked = check_path_params(params, route.wildcard); !checked) return error_response(checked.error());
        auto result = route.handler(request, params);
        return result ? std::move(*result) : error_response(result.error());
    }
    for (const auto& route : m_routes) {
        PathParams params;
        if (route.websocket && match(route, path, params) && request.method == "GET")
            return error_response({400, "", fmt::format("{} is a WebSocket endpoint: send an Upgrade: websocket request", request.path)});
    }
    if (!allowed.empty()) {
        auto response = error_response(
            {405, "", fmt::format("{} is not allowed on {}; allowed: {}", request.method, request.path, allowed)});
        response.headers.emplace_back("Allow", allowed);
        return response;
    }
    return error_response({404, "", fmt::format("no such endpoint: {} {}", request.method, request.path)});
}

const WebSocketHandler* Router::find_websocket(const HttpRequest& request, PathParams& params, ApiError& error) const {
    auto path = split_path(request.path);
    for (const auto& route : m_routes) {
        if (!route.websocket || !match(route, path, params)) continue;
        if (auto checked = check_path_params(params, route.wildcard); !checked) {
            error = checked.error();
            return nullptr;
        }
        return &route.websocket;
    }
    error = {404, "", fmt::format("no WebSocket endpoint at {}", request.path)};
    return nullptr;
}

const StreamHandler* Router::find_streaming(const HttpRequest& request, PathParams& params) const {
    auto path = split_path(request.path);
    for (const auto& route : m_routes) {
        if (route.stream && route.method == request.method && match(route, path, params)) return &route.stream;
    }
    return nullptr;
}

}  // namespace corral::daemon
