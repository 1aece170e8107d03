#include "cli/api.h"

#include <cctype>

#include <fmt/format.h>

namespace corral::cli {

ApiError error_from_response(const HttpResponse& response) {
    ApiError error;
    error.kind = ApiErrorKind::Refused;
    error.status = response.status;
    const auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_object() && body.contains("error") && body["error"].is_object()) {
        const auto& e = body["error"];
        if (e.contains("message") && e["message"].is_string()) error.message = e["message"].get<std::string>();
        if (e.contains("field") && e["field"].is_string()) error.field = e["field"].get<std::string>();
    }
    if (error.message.empty()) {
        std::string text = response.body.substr(0, 200);
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
        error.message = text.empty() ? fmt::format("corrald answered HTTP {}", response.status)
                                     : fmt::format("corrald answered HTTP {}: {}", response.status, text);
    }
    return error;
}

std::string format_error(const ApiError& error, const std::string& subject) {
    std::string line = "corral: ";
    // The daemon often names the object itself ("web1 is running; ..."); don't say it twice.
    bool names_subject = false;
    for (auto at = subject.empty() ? std::string::npos : error.message.find(subject); at != std::string::npos && !names_subject;
         at = error.message.find(subject, at + 1)) {
        auto name_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; };
        const std::size_t end = at + subject.size();
        names_subject = (at == 0 || !name_char(error.message[at - 1])) &&
                        (end == error.message.size() || !name_char(error.message[end]));
    }
    if (!subject.empty() && !names_subject && error.kind != ApiErrorKind::Unreachable) line += subject + ": ";
    line += error.message;
    if (!error.field.empty()) line += fmt::format(" (field {})", error.field);
    return line;
}

int exit_code_for(const ApiError& error) {
    switch (error.kind) {
    case ApiErrorKind::Unreachable: return 3;
    case ApiErrorKind::TaskFailed: return 4;
    case ApiErrorKind::BadValue: return 2;
    case ApiErrorKind::Refused:
    case ApiErrorKind::Protocol: return 1;
    }
    return 1;
}

ApiResult<nlohmann::json> Api::call(const HttpRequest& request) {
    const HttpResponse response = TRY(send(request));
    if (response.status < 200 || response.status >= 300) return std::unexpected(error_from_response(response));
    if (response.body.empty()) return nlohmann::json();
    auto body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) {
        // Not JSON (e.g. console?tail=N is text/plain): hand it back as a string.
        if (response.content_type.rfind("application/json", 0) == 0)
            return api_fail(ApiErrorKind::Protocol,
                            fmt::format("corrald sent invalid JSON for {} {}", request.method, request.target));
        return nlohmann::json(response.body);
    }
    return body;
}

}  // namespace corral::cli
