#include "cli/interrupt_notice.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace corral::cli {

namespace {

// The handler may only call async-signal-safe functions: the text is prepared here beforehand.
char g_notice[512];
size_t g_length = 0;
struct sigaction g_previous;

void on_interrupt(int) {
    [[maybe_unused]] auto written = ::write(STDERR_FILENO, g_notice, g_length);
    ::_exit(130);  // 128 + SIGINT, what a shell reports for a command Ctrl-C ended
}

}  // namespace

InterruptNotice::InterruptNotice(const std::string& notice) {
    g_length = std::min(notice.size(), sizeof g_notice);
    std::memcpy(g_notice, notice.data(), g_length);
    struct sigaction action {};
    action.sa_handler = on_interrupt;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGINT, &action, &g_previous);
    // Started with SIGINT ignored (a shell's background job, nohup-like wrappers): keep it so.
    if (g_previous.sa_handler == SIG_IGN) ::sigaction(SIGINT, &g_previous, nullptr);
}

InterruptNotice::~InterruptNotice() { ::sigaction(SIGINT, &g_previous, nullptr); }

}  // namespace corral::cli
