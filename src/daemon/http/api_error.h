#pragma once

#include <expected>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"
#include "daemon/http/http_message.h"

namespace corral::daemon {

/// What the API answers when a request cannot be served: the HTTP status, the request field to
/// blame (empty when no single field is) and a sentence for a human (docs/api.md "Errors").
struct ApiError {
    int status = 500;
    std::string field;
    std::string message;
};

template <typename T>
using ApiResult = BasicResult<T, ApiError>;

inline std::unexpected<ApiError> api_fail(int status, std::string message, std::string field = {}) {
    return std::unexpected(ApiError{status, std::move(field), std::move(message)});
}

/// Maps a library error to an API error by its kind: NotFound 404, Conflict/Busy 409, Invalid
/// 400, Unavailable (EAGAIN included) 503, a failed system call or anything else 500.
ApiError api_error_from(const Error& error, std::string field = {});

/// Converts a Result's error with api_error_from (for TRY in handlers).
template <typename T>
ApiResult<T> api(Result<T> result, std::string field = {}) {
    if (!result) return std::unexpected(api_error_from(result.error(), std::move(field)));
    if constexpr (std::is_void_v<T>) {
        return {};
    } else {
        return std::move(*result);
    }
}

/// {"error": {"status", "field"?, "message"}} with the error's status; never throws (the
/// message and field are made valid UTF-8).
HttpResponse error_response(const ApiError& error);
/// A JSON body with the given status.
HttpResponse json_response(int status, const nlohmann::json& body);

/// `value` serialized without ever throwing: invalid UTF-8 that slipped into a string becomes
/// U+FFFD. Every response and event the daemon sends is dumped through this.
std::string dump_json(const nlohmann::json& value, int indent = -1);

}  // namespace corral::daemon
