#include "base/log.h"

#include <cstdio>
#include <mutex>
#include <string>

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
    std::lock_guard lock(g_log_mutex);
    if (level < g_min_level) return;
    std::fprintf(stderr, "%s: %s: %.*s\n", g_prefix.c_str(), level_name(level),
                 static_cast<int>(message.size()), message.data());
}

}  // namespace corral
