#include "base/event_loop.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace corral {
namespace {

bool wait_for(const std::function<bool()>& condition) {
    for (int i = 0; i < 500; ++i) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return condition();
}

TEST(EventLoopTest, RunsCallbacksOnItsThreadWhenTheFdIsReadable) {
    auto loop = EventLoop::start("test-loop").value();
    auto event = EventFd::create(EFD_NONBLOCK).value();
    std::atomic<int> calls{0};
    std::atomic<bool> on_loop_thread{false};
    ASSERT_TRUE(loop->add(event.fd(), [&] {
        event.consume();
        on_loop_thread = loop->on_loop_thread();
        ++calls;
    }));
    event.signal();
    EXPECT_TRUE(wait_for([&] { return calls.load() == 1; }));
    EXPECT_TRUE(on_loop_thread.load());
    EXPECT_FALSE(loop->add(event.fd(), [] {}).has_value()) << "one callback per fd";
}

TEST(EventLoopTest, RemoveWaitsAndStopsCallbacks) {
    auto loop = EventLoop::start("test-loop").value();
    auto event = EventFd::create(EFD_NONBLOCK).value();
    std::atomic<int> calls{0};
    ASSERT_TRUE(loop->add(event.fd(), [&] {
        event.consume();
        ++calls;
    }));
    loop->remove(event.fd());
    event.signal();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(calls.load(), 0);
    loop->remove(event.fd());  // unknown fds are ignored
}

TEST(EventLoopTest, RunSyncRunsOnTheLoopAndAfterStopInline) {
    auto loop = EventLoop::start("test-loop").value();
    bool ran_on_loop = false;
    loop->run_sync([&] { ran_on_loop = loop->on_loop_thread(); });
    EXPECT_TRUE(ran_on_loop);
    loop->stop();
    bool ran = false;
    loop->run_sync([&] { ran = true; });
    EXPECT_TRUE(ran);
    loop->stop();  // idempotent
}

TEST(EventLoopTest, CallbacksMayRemoveThemselves) {
    auto loop = EventLoop::start("test-loop").value();
    auto event = EventFd::create(EFD_NONBLOCK).value();
    std::atomic<int> calls{0};
    ASSERT_TRUE(loop->add(event.fd(), [&] {
        ++calls;
        loop->remove(event.fd());  // without consuming: it must not run again
    }));
    event.signal();
    EXPECT_TRUE(wait_for([&] { return calls.load() == 1; }));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(calls.load(), 1);
}

}  // namespace
}  // namespace corral
