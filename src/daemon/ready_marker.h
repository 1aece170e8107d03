#pragma once

// What `backup verify --boot` watches for on a throwaway VM's serial console (docs/backup.md
// "Proven to boot"): a line that matches the ready pattern, and the last lines to quote when it
// never comes.

#include <regex.h>

#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace corral::daemon {

/// The default ready pattern: the test guest's init ("CORRAL-INIT: up", guests/initramfs/init)
/// or a login prompt (getty's "hostname login: ").
inline constexpr const char* k_default_ready_pattern = "CORRAL-INIT: up|login: *$";

/// Matches console output, line by line, against a POSIX extended regular expression (glibc's
/// regexec: no backtracking blow-up or deep recursion, unlike std::regex, whatever pattern a
/// client sends; back-references, which would bring those back, are refused). The unfinished last
/// line is matched too (a login prompt ends without a newline). Lines are cut at k_max_line bytes
/// and stripped of CRs and control characters first, so a hostile guest can neither make a match
/// slow nor put escape sequences into the reason a failure records.
class ReadyMarker {
public:
    static constexpr size_t k_max_line = 1024;
    static constexpr size_t k_max_pattern = 200;

    /// EINVAL naming what is wrong with `pattern` (POSIX ERE syntax, at most k_max_pattern bytes).
    static Result<ReadyMarker> make(const std::string& pattern);

    /// Takes more console output; true once a line has matched (and from then on).
    bool feed(std::string_view output);
    bool ready() const { return m_ready; }
    /// The last `count` non-empty lines seen (the unfinished one included), joined by " | ".
    std::string last_lines(size_t count = 5) const;
    const std::string& pattern() const { return m_pattern; }

private:
    /// A regex_t, regfree'd once regcomp succeeded. Held by pointer: regex_t may not be moved.
    struct Compiled {
        regex_t regex{};
        bool valid = false;
        Compiled() = default;
        Compiled(const Compiled&) = delete;
        Compiled& operator=(const Compiled&) = delete;
        ~Compiled() {
            if (valid)
                regfree(&regex);
        }
    };
    ReadyMarker(std::string pattern, std::unique_ptr<Compiled> regex)
        : m_pattern(std::move(pattern)), m_regex(std::move(regex)) {}
    bool matches(const std::string& line) const;

    std::string m_pattern;
    std::unique_ptr<Compiled> m_regex;
    std::string m_line;  // the unfinished line
    std::deque<std::string> m_lines;
    bool m_ready = false;
};

}  // namespace corral::daemon
