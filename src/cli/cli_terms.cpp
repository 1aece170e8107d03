#include "cli/cli_terms.h"

#include <cctype>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "cli/size.h"

namespace corral::cli {

namespace {

bool ends_with(const std::string& text, const std::string& tail) {
    return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'; }

/// Replaces `word` where it stands as a whole word in `text`.
std::string replace_word(std::string text, const std::string& word, const std::string& with) {
    for (std::size_t at = text.find(word); at != std::string::npos; at = text.find(word, at)) {
        const bool starts = at == 0 || !is_word_char(text[at - 1]);
        const bool ends = at + word.size() == text.size() || !is_word_char(text[at + word.size()]) ||
                          !is_word_char(word.back());
        if (starts && ends) {
            text.replace(at, word.size(), with);
            at += with.size();
        } else {
            at += word.size();
        }
    }
    return text;
}

/// The flag or argument of the command line that sets an API field; empty when none does.
std::string flag_for(const std::string& field, const HttpRequest& request) {
    const std::string& target = request.target;
    if (field == "vcpus") return "--cpus";
    if (field == "memory_mib") return "--memory";
    if (field == "restart_policy") return "--restart";
    if (field == "limits.cpu_weight") return "--cpu-weight";
    if (field == "limits.cpu_max_percent") return "--cpu-max";
    if (field == "limits.memory_overhead_mib") return "--memory-overhead";
    if (field == "limits.io_weight") return "--io-weight";
    if (field == "limits.disk_bytes_per_s")
        return "--disk-bps";
    if (field == "limits.disk_iops")
        return "--disk-iops";
    if (field == "limits.nic_bytes_per_s")
        return "--nic-bps";
    if (field == "limits.host_cpus") return "--host-cpus";
    if (field == "limits.vcpu_pins") return "--vcpu-pins";
    if (field == "cmdline" || field == "engine" || field == "image" || field == "format") return "--" + field;
    if (field.rfind("disks", 0) == 0) return "--disk";
    if (field.rfind("nics", 0) == 0) return "--nic";
    if (field == "size_bytes" || field == "size") return ends_with(target, "/resize") ? "SIZE" : "--size";
    if (field == "path") return ends_with(target, "/export") ? "FILE" : "--path";
    if (field == "import") return "FILE";
    if (field == "tail") return "--tail";
    return {};
}

/// Numbers of 1024 and more in a message about sizes, as sizes (21474836480 -> 20G).
std::string human_sizes(const std::string& text) {
    std::string out;
    for (std::size_t i = 0; i < text.size();) {
        if (!std::isdigit(static_cast<unsigned char>(text[i])) || (i > 0 && is_word_char(text[i - 1]))) {
            out += text[i++];
            continue;
        }
        std::size_t end = i;
        while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) ++end;
        const std::string digits = text.substr(i, end - i);
        const bool whole = end == text.size() || !is_word_char(text[end]);
        if (whole && digits.size() >= 4 && digits.size() <= 19 && std::stoull(digits) >= 1024)
            out += format_size(std::stoull(digits));
        else
            out += digits;
        i = end;
    }
    return out;
}

}  // namespace

CliError in_cli_terms(const ApiError& error, const HttpRequest& request) {
    CliError out{error, {}};
    if (error.kind != ApiErrorKind::Refused && error.kind != ApiErrorKind::TaskFailed) return out;
    std::string message = error.message;
    // Some refusals blame a field other than the one the sentence is about ("size_bytes must be ...
    // (field name)"): the sentence's own subject is the better guide.
    std::string field = error.field;
    if (const auto space = message.find(' '); space != std::string::npos && message.compare(space, 6, " must ") == 0 &&
                                               !flag_for(message.substr(0, space), request).empty())
        field = message.substr(0, space);

    // A missing thing (404) was named on the command line, not set by a field.
    const std::string flag = error.status == 404 ? std::string() : flag_for(field, request);
    if (!flag.empty()) {
        // The field where it is the subject of the sentence ("vcpus must", "format 'x' is"); in
        // prose ("no image named x") the word stays, and the sentence names what was wrong.
        const bool mentioned = message.find(field) != std::string::npos;
        for (const char* after : {" must", " is ", " '", " ("})
            message = replace_word(message, field + after, flag + after);
        if (flag == "--size" || flag == "SIZE") message = human_sizes(message);
        if (!mentioned) message += " (" + flag + ")";
    }
    // Routes named in the daemon's hints, as the verbs that list those things.
    static const std::pair<const char*, const char*> k_routes[] = {
        {"GET /api/v1/images", "corral image list"}, {"GET /api/v1/volumes", "corral volume list"},
        {"GET /api/v1/pools", "corral pool list"},   {"GET /api/v1/vms", "corral vm list"},
        {"GET /api/v1/tasks", "corral task list"},   {"POST /api/v1/images", "corral image prepare"},
        {" (from.pool must equal pool)", ""},         {"(\"linked\": false)", "(--full)"},
    };
    for (const auto& [route, verb] : k_routes)
        for (auto at = message.find(route); at != std::string::npos; at = message.find(route, at))
            message.replace(at, std::string(route).size(), verb);
    out.error.message = message;
    out.error.field.clear();
    out.flag = flag;
    // A value the daemon refused is a mistake on the command line, like one the CLI catches itself.
    if (error.kind == ApiErrorKind::Refused && error.status == 400) out.error.kind = ApiErrorKind::BadValue;
    return out;
}

std::string error_json(const std::string& message, const CliError& error, int exit_code) {
    nlohmann::json body{{"message", message}, {"exit_code", exit_code}};
    if (!error.flag.empty()) body["flag"] = error.flag;
    if (error.error.status != 0) body["status"] = error.error.status;
    return nlohmann::json{{"error", body}}.dump();
}

}  // namespace corral::cli
