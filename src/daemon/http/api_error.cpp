#include "daemon/http/api_error.h"

#include <cerrno>

#include <nlohmann/json.hpp>

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
    nlohmann::json inner = {{"status", error.status}, {"message", error.message}};
    if (!error.field.empty()) inner["field"] = error.field;
    return json_response(error.status, nlohmann::json{{"error", inner}});
}

HttpResponse json_response(int status, const nlohmann::json& body) {
    HttpResponse response;
    response.status = status;
    response.body = body.dump(2);
    response.body.push_back('\n');
    return response;
}

}  // namespace corral::daemon
