#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace corral::daemon {

/// An HTTP request as handlers see it: no Beast types, so handlers and their tests stay light.
struct HttpRequest {
    std::string method;                         // "GET", "POST", ...
    std::string target;                         // as sent: "/api/v1/vms?x=1"
    std::string path;                           // percent-decoded, without the query
    std::map<std::string, std::string> query;   // decoded query parameters
    std::map<std::string, std::string> headers; // lowercase names
    std::string body;
    bool websocket_upgrade = false;

    /// A query parameter, or `fallback` when absent.
    std::string query_or(const std::string& name, const std::string& fallback = "") const {
        auto it = query.find(name);
        return it == query.end() ? fallback : it->second;
    }
};

struct HttpResponse {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

/// Splits "/a/b?x=1&y=%20" into a decoded path and query map; false when the encoding is bad.
bool parse_target(const std::string& target, std::string& path, std::map<std::string, std::string>& query);

}  // namespace corral::daemon
