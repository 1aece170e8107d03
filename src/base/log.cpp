#include "base/log.h"

#include <cstdio>
#include <mutex>
#include <string>

#include "base/utf8.h"

namespace corral {
namespace {

std::mutex g_log_mutex;
LogLevel g_min_level = LogLevel::Info;
std::string g_prefix = "corral";

const char* level_name(LogLevel level) {
    switch (level) {
        case LogLevel::Debug: return "debug";
        case LogLevel::Info: return "info";
        case LogLevel::Warning: return "warning";
        case LogLevel::Error: return "error";
    }
    return "?";
}

/// A message as one line of valid UTF-8: messages quote names, paths and guest output, and a
/// newline or an escape sequence in them must not forge log lines or drive a terminal.
std::string printable(std::string_view message) {
    std::string text = sanitize_utf8(message);
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        auto byte = static_cast<unsigned char>(c);
        if ((byte < 0x20 && c != '\t') || byte == 0x7f)
            out += fmt::format("\\x{:02x}", byte);
        else
            out.push_back(c);
    }
    return out;
}

}  // namespace

void set_log_level(LogLevel level) {
    std::lock_guard lock(g_log_mutex);
    g_min_level = level;
}

void set_log_prefix(std::string_view prefix) {
    std::lock_guard lock(g_log_mutex);
    g_prefix = prefix;
}

void log_line(LogLevel level, std::string_view message) {
    std::string text = printable(message);
    std::lock_guard lock(g_log_mutex);
    if (level < g_min_level) return;
    std::fprintf(stderr, "%s: %s: %.*s\n", g_prefix.c_str(), level_name(level), static_cast<int>(text.size()),
                 text.data());
}

}  // namespace corral
