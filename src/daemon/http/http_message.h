#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace corral::daemon {

/// Which listener a request came in on: decides what it may do (docs/api.md "Remote access").
enum class Origin {
    UnixSocket,  ///< the local socket: whoever can open it may use the API
    Tls,         ///< a TCP listener: TLS, and a bearer token on every request
};

/// An HTTP request as handlers see it: no Beast types, so handlers and their tests stay light.
struct HttpRequest {
    std::string method;                         // "GET", "POST", ...
    std::string target;                         // as sent: "/api/v1/vms?x=1"
    std::string path;                           // percent-decoded, without the query
    std::map<std::string, std::string> query;   // decoded query parameters
    std::map<std::string, std::string> headers; // lowercase names
    std::string body;
    bool websocket_upgrade = false;
    Origin origin = Origin::UnixSocket;
    std::string token_name;  // the bearer token that authenticated it (Origin::Tls)

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
