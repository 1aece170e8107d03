#pragma once

#include <expected>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace corral::cli {

/// One HTTP request to corrald: what a verb turns into (testable without a server).
struct HttpRequest {
    std::string method;                  ///< GET, POST, PUT, PATCH, DELETE
    std::string target;                  ///< path and query, e.g. /api/v1/vms/web1?volumes=true
    std::optional<nlohmann::json> body;  ///< sent as application/json when present

    bool operator==(const HttpRequest&) const = default;
};

/// corrald's answer, before interpretation.
struct HttpResponse {
    int status = 0;
    std::string content_type;
    std::string body;
};

/// Why a call failed; decides the exit code.
enum class ApiErrorKind {
    Unreachable,  ///< could not connect to the socket (exit 3)
    Refused,      ///< corrald answered 4xx/5xx (exit 1)
    Protocol,     ///< the connection broke or the answer was not what the API promises (exit 1)
    TaskFailed,   ///< a task the CLI waited for ended as failed (exit 4)
    BadValue,     ///< corrald refused a value given on the command line (HTTP 400; exit 2, a usage error)
};

/// A failed API call, carrying the daemon's `error.message` and `field` when it sent them.
struct ApiError {
    ApiErrorKind kind = ApiErrorKind::Protocol;
    std::string message;
    std::string field;  ///< the request field the daemon blamed, empty when none
    int status = 0;     ///< the HTTP status, 0 when there was no answer
    std::string socket; ///< the socket path, for Unreachable
};

/// The CLI's Result: like corral::Result, with the API's richer error.
template <typename T>
using ApiResult = BasicResult<T, ApiError>;

inline std::unexpected<ApiError> api_fail(ApiErrorKind kind, std::string message) {
    return std::unexpected(ApiError{kind, std::move(message), {}, 0, {}});
}

/// Turns a 4xx/5xx answer into an ApiError from its `{"error": {"status", "field", "message"}}` body
/// (or from the status line when the body is not that).
ApiError error_from_response(const HttpResponse& response);

/// The line the user sees for an error, without the trailing newline:
/// `corral: web1: memory_mib must be ... (field memory_mib)`. `subject` is the object the command
/// was about (empty for none).
std::string format_error(const ApiError& error, const std::string& subject);

/// The exit code for an error: 2 a refused value, 3 unreachable, 4 task failed, else 1.
int exit_code_for(const ApiError& error);

/// What the CLI needs from corrald: one JSON request, one answer. The real one is ApiClient
/// (HTTP over the unix socket); tests substitute their own.
class Api {
public:
    virtual ~Api() = default;

    /// Sends the request and returns the raw answer; fails only when there is no answer.
    virtual ApiResult<HttpResponse> send(const HttpRequest& request) = 0;

    /// Sends the request; a 2xx answer's JSON body (null when empty), else the daemon's error.
    ApiResult<nlohmann::json> call(const HttpRequest& request);
};

}  // namespace corral::cli
