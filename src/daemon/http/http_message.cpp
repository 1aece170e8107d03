#include "daemon/http/http_message.h"

#include <cctype>

namespace corral::daemon {
namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool percent_decode(std::string_view in, std::string& out, bool plus_is_space) {
    out.clear();
    for (size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return false;
            int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return false;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return true;
}

}  // namespace

bool parse_target(const std::string& target, std::string& path, std::map<std::string, std::string>& query) {
    std::string_view whole(target);
    auto question = whole.find('?');
    std::string_view raw_path = whole.substr(0, question);
    // A NUL in a path would cut it short in file APIs later: refuse it outright.
    if (!percent_decode(raw_path, path, false) || path.find('\0') != std::string::npos) return false;
    query.clear();
    if (question == std::string_view::npos) return true;
    std::string_view rest = whole.substr(question + 1);
    while (!rest.empty()) {
        auto amp = rest.find('&');
        std::string_view pair = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        if (pair.empty()) continue;
        auto eq = pair.find('=');
        std::string key, value;
        if (!percent_decode(pair.substr(0, eq), key, true)) return false;
        if (eq != std::string_view::npos && !percent_decode(pair.substr(eq + 1), value, true)) return false;
        query[key] = value;
    }
    return true;
}

}  // namespace corral::daemon
