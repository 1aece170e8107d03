#include "base/signal_mask.h"

#include <pthread.h>

namespace corral {

sigset_t signal_set(std::initializer_list<int> signals) {
    sigset_t set;
    sigemptyset(&set);
    for (int signal : signals) sigaddset(&set, signal);
    return set;
}

sigset_t stop_signals() { return signal_set({SIGTERM, SIGINT, SIGHUP}); }

void block_signals(const sigset_t& signals) { pthread_sigmask(SIG_BLOCK, &signals, nullptr); }

void unblock_signals(const sigset_t& signals) { pthread_sigmask(SIG_UNBLOCK, &signals, nullptr); }

void clear_signal_mask() {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

}  // namespace corral
