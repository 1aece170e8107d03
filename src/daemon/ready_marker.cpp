#include "daemon/ready_marker.h"

#include <fmt/format.h>

namespace corral::daemon {

namespace {
constexpr size_t k_kept_lines = 20;
}

Result<ReadyMarker> ReadyMarker::make(const std::string& pattern) {
    if (pattern.empty())
        return fail("the ready pattern is empty", EINVAL);
    if (pattern.size() > k_max_pattern)
        return fail(fmt::format("the ready pattern is longer than {} characters", k_max_pattern), EINVAL);
    for (size_t i = 0; i + 1 < pattern.size(); ++i)
        if (pattern[i] == '\\' && pattern[i + 1] >= '1' && pattern[i + 1] <= '9')
            return fail(fmt::format("the ready pattern '{}' has a back-reference (\\{}), which is not allowed", pattern,
                                    pattern[i + 1]),
                        EINVAL);
    auto compiled = std::make_unique<Compiled>();
    if (int code = regcomp(&compiled->regex, pattern.c_str(), REG_EXTENDED | REG_NOSUB); code != 0) {
        char why[256];
        regerror(code, &compiled->regex, why, sizeof why);
        return fail(
            fmt::format("the ready pattern '{}' is not a regular expression (POSIX extended): {}", pattern, why),
            EINVAL);
    }
    compiled->valid = true;
    return ReadyMarker(pattern, std::move(compiled));
}

bool ReadyMarker::matches(const std::string& line) const {
    return regexec(&m_regex->regex, line.c_str(), 0, nullptr, 0) == 0;
}

bool ReadyMarker::feed(std::string_view output) {
    for (char c : output) {
        if (c == '\n') {
            if (!m_ready && matches(m_line))
                m_ready = true;
            if (!m_line.empty()) {
                m_lines.push_back(std::move(m_line));
                if (m_lines.size() > k_kept_lines)
                    m_lines.pop_front();
            }
            m_line.clear();
        } else if (static_cast<unsigned char>(c) >= 0x20 && c != 0x7f && m_line.size() < k_max_line) {
            m_line += c;
        }
    }
    if (!m_ready && !m_line.empty() && matches(m_line))
        m_ready = true;
    return m_ready;
}

std::string ReadyMarker::last_lines(size_t count) const {
    std::deque<std::string> lines = m_lines;
    if (!m_line.empty())
        lines.push_back(m_line);
    while (lines.size() > count)
        lines.pop_front();
    std::string out;
    for (const auto& line : lines)
        out += (out.empty() ? "" : " | ") + line;
    return out;
}

}  // namespace corral::daemon
