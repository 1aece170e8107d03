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
    try {
        return ReadyMarker(pattern, std::regex(pattern, std::regex::ECMAScript));
    } catch (const std::regex_error& e) {
        return fail(
            fmt::format("the ready pattern '{}' is not a regular expression (ECMAScript): {}", pattern, e.what()),
            EINVAL);
    }
}

bool ReadyMarker::matches(const std::string& line) const {
    try {
        return std::regex_search(line, m_regex);
    } catch (const std::regex_error&) {
        return false;  // too complex for this line (error_complexity, error_stack): not a match
    }
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
