#include "vmm/devices/rate_limiter.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace corral::vmm {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
    std::chrono::nanoseconds now{1s};
    RateLimiter::Clock function() {
        return [this] { return now; };
    }
};

TEST(RateLimiterTest, UnlimitedAlwaysConsumes) {
    FakeClock clock;
    RateLimiter limiter(std::nullopt, std::nullopt, clock.function());
    EXPECT_FALSE(limiter.limited());
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(limiter.consume(1 << 30));
    EXPECT_EQ(limiter.time_until_available(1 << 30), 0ns);
}

TEST(RateLimiterTest, ReconfigureLimitsAnUnlimitedOneAndLiftsItAgain) {
    FakeClock clock;
    RateLimiter limiter(std::nullopt, std::nullopt, clock.function());
    limiter.reconfigure(TokenBucketConfig{1000, 0}, TokenBucketConfig{2, 0});
    EXPECT_TRUE(limiter.limited());
    EXPECT_TRUE(limiter.consume(500)) << "the new buckets start full";
    EXPECT_TRUE(limiter.consume(500));
    EXPECT_FALSE(limiter.consume(1)) << "2 ops a second: the third waits";
    EXPECT_EQ(limiter.time_until_available(1), 500ms) << "an op token in 500 ms (bytes: 1 ms)";
    limiter.reconfigure(std::nullopt, TokenBucketConfig{0, 0});
    EXPECT_FALSE(limiter.limited()) << "rate 0 is unlimited";
    EXPECT_TRUE(limiter.consume(1 << 30));
}

TEST(RateLimiterTest, BytesBucketStartsFullAndRefillsAtTheRate) {
    FakeClock clock;
    RateLimiter limiter(TokenBucketConfig{1000, 0}, std::nullopt, clock.function());
    EXPECT_TRUE(limiter.consume(600));
    EXPECT_TRUE(limiter.consume(400));
    EXPECT_FALSE(limiter.consume(1));
    EXPECT_EQ(limiter.time_until_available(100), 100ms);
    clock.now += 50ms;
    EXPECT_FALSE(limiter.consume(100)) << "only 50 tokens after 50ms";
    EXPECT_EQ(limiter.time_until_available(100), 50ms);
    clock.now += 50ms;
    EXPECT_TRUE(limiter.consume(100));
}

TEST(RateLimiterTest, RefillStopsAtTheBurst) {
    FakeClock clock;
    RateLimiter limiter(TokenBucketConfig{100, 200}, std::nullopt, clock.function());
    EXPECT_TRUE(limiter.consume(200));
    clock.now += 1h;
    EXPECT_TRUE(limiter.consume(200));
    EXPECT_FALSE(limiter.consume(1));
}

TEST(RateLimiterTest, OpsBucketCountsOperations) {
    FakeClock clock;
    RateLimiter limiter(std::nullopt, TokenBucketConfig{10, 2}, clock.function());
    EXPECT_TRUE(limiter.consume(0));
    EXPECT_TRUE(limiter.consume(1 << 20));
    EXPECT_FALSE(limiter.consume(0));
    EXPECT_EQ(limiter.time_until_available(0), 100ms);
    clock.now += 100ms;
    EXPECT_TRUE(limiter.consume(0));
}

TEST(RateLimiterTest, BothBucketsMustAgreeAndNothingIsTakenOnRefusal) {
    FakeClock clock;
    RateLimiter limiter(TokenBucketConfig{1000, 1000}, TokenBucketConfig{1, 1}, clock.function());
    EXPECT_TRUE(limiter.consume(10));
    EXPECT_FALSE(limiter.consume(10)) << "ops bucket empty";
    EXPECT_EQ(limiter.time_until_available(10), 1s);
    clock.now += 1s;
    EXPECT_TRUE(limiter.consume(990)) << "the refused request took no bytes";
}

TEST(RateLimiterTest, OversizedRequestGoesThroughFromAFullBucketAndLeavesDebt) {
    FakeClock clock;
    RateLimiter limiter(TokenBucketConfig{1000, 1000}, std::nullopt, clock.function());
    EXPECT_TRUE(limiter.consume(3000)) << "bigger than the burst: allowed from a full bucket";
    EXPECT_FALSE(limiter.consume(1));
    EXPECT_EQ(limiter.time_until_available(3000), 3s) << "2000 of debt plus a full bucket";
    clock.now += 2s;
    EXPECT_FALSE(limiter.consume(3000));
    clock.now += 1s;
    EXPECT_TRUE(limiter.consume(3000));
}

TEST(RateLimiterTest, ClockGoingBackwardsAddsNothing) {
    FakeClock clock;
    RateLimiter limiter(TokenBucketConfig{1000, 1000}, std::nullopt, clock.function());
    EXPECT_TRUE(limiter.consume(1000));
    clock.now -= 500ms;
    EXPECT_FALSE(limiter.consume(1));
}

TEST(RateLimiterTest, ConcurrentConsumersNeverOverdraw) {
    std::atomic<int64_t> now{0};
    RateLimiter limiter(std::nullopt, TokenBucketConfig{1, 1000},
                        [&] { return std::chrono::nanoseconds(now.load()); });
    std::atomic<int> granted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 1000; ++i)
                if (limiter.consume(0)) ++granted;
        });
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(granted.load(), 1000);
}

}  // namespace
}  // namespace corral::vmm
