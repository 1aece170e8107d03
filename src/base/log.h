#pragma once

#include <fmt/format.h>
#include <string_view>

namespace corral {

enum class LogLevel { Debug, Info, Warning, Error };

/// Sets the lowest level that is printed (Info by default).
void set_log_level(LogLevel level);
/// Sets the prefix of every log line, e.g. "corral-vmm".
void set_log_prefix(std::string_view prefix);
/// Writes one line to stderr, "<prefix>: <level>: <message>". Thread-safe.
void log_line(LogLevel level, std::string_view message);

template <typename... Args>
void log_info(fmt::format_string<Args...> format, Args&&... args) {
    log_line(LogLevel::Info, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void log_warning(fmt::format_string<Args...> format, Args&&... args) {
    log_line(LogLevel::Warning, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void log_error(fmt::format_string<Args...> format, Args&&... args) {
    log_line(LogLevel::Error, fmt::format(format, std::forward<Args>(args)...));
}
template <typename... Args>
void log_debug(fmt::format_string<Args...> format, Args&&... args) {
    log_line(LogLevel::Debug, fmt::format(format, std::forward<Args>(args)...));
}

}  // namespace corral
