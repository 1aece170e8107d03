#include "base/signal_mask.h"

#include <pthread.h>

#include <thread>

#include <gtest/gtest.h>

namespace corral {
namespace {

sigset_t current_mask() {
    sigset_t mask;
    pthread_sigmask(SIG_BLOCK, nullptr, &mask);
    return mask;
}

TEST(SignalMaskTest, StopSignalsAreTermIntAndHup) {
    sigset_t stop = stop_signals();
    for (int signal : {SIGTERM, SIGINT, SIGHUP}) EXPECT_EQ(sigismember(&stop, signal), 1) << signal;
    EXPECT_EQ(sigismember(&stop, SIGKILL), 0);
    EXPECT_EQ(sigismember(&stop, SIGUSR1), 0);
}

TEST(SignalMaskTest, BlockedSignalsAreInheritedByNewThreadsAndCanBeCleared) {
    // On a thread of its own, so the test runner's mask stays as it was.
    std::thread([] {
        block_signals(stop_signals());
        sigset_t blocked = current_mask();
        EXPECT_EQ(sigismember(&blocked, SIGTERM), 1);
        bool inherited = false;
        std::thread([&] {
            sigset_t mask = current_mask();
            inherited = sigismember(&mask, SIGHUP) == 1;
        }).join();
        EXPECT_TRUE(inherited);
        unblock_signals(signal_set({SIGTERM}));
        sigset_t mask = current_mask();
        EXPECT_EQ(sigismember(&mask, SIGTERM), 0);
        EXPECT_EQ(sigismember(&mask, SIGINT), 1);
        clear_signal_mask();
        mask = current_mask();
        EXPECT_EQ(sigismember(&mask, SIGINT), 0);
        EXPECT_EQ(sigismember(&mask, SIGHUP), 0);
    }).join();
}

}  // namespace
}  // namespace corral
