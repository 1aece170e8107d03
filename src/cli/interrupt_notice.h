#pragma once

#include <string>

namespace corral::cli {

/// While it lives, Ctrl-C (SIGINT) prints `notice` on stderr and ends corral with exit 130, instead
/// of ending it silently. For waits on a task: the task goes on in corrald, and the notice says
/// how to wait for it again. One at a time; the previous SIGINT disposition comes back on
/// destruction. A SIGINT ignored when corral started (a shell's background job) stays ignored.
class InterruptNotice {
public:
    explicit InterruptNotice(const std::string& notice);
    ~InterruptNotice();
    InterruptNotice(const InterruptNotice&) = delete;
    InterruptNotice& operator=(const InterruptNotice&) = delete;
};

}  // namespace corral::cli
