#include "daemon/http/api_error.h"

#include <cerrno>

#include <nlohmann/json.hpp>

#include "base/utf8.h"

namespace corral::daemon {

ApiError api_error_from(const Error& error, std::string field) {
    int status = 500;
    switch (error.kind()) {
        case ErrorKind::NotFound: status = 404; break;
        case ErrorKind::Conflict:
        case ErrorKind::Busy: status = 409; break;
        case ErrorKind::Invalid: status = 400; break;
        case ErrorKind::Unavailable: status = 503; break;
        case ErrorKind::Failed:
        case ErrorKind::System: break;
    }
    // A 4xx message is about the request, so the errno text ("No such file or directory") only
    // repeats it; a 5xx keeps it because that is all the operator has to go on.
    std::string message = status >= 500 ? error.describe() : error.message();
    return ApiError{status, std::move(field), std::move(message)};
}

HttpResponse error_response(const ApiError& error) {
    // Messages quote what the client sent (names, paths, header values): made valid here, so
    // that an error about bad bytes cannot fail to be reported.
    nlohmann::json inner = {{"status", error.status}, {"message", sanitize_utf8(error.message)}};
    if (!error.field.empty()) inner["field"] = sanitize_utf8(error.field);
    return json_response(error.status, nlohmann::json{{"error", inner}});
}

HttpResponse json_response(int status, const nlohmann::json& body) {
    HttpResponse response;
    response.status = status;
    response.body = dump_json(body, 2);
    response.body.push_back('\n');
    return response;
}

std::string dump_json(const nlohmann::json& value, int indent) {
    // The last line only: strings from outside are sanitized where they come in. With the
    // default (strict) handler, one invalid byte would throw out of whoever answers.
    return value.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace corral::daemon
