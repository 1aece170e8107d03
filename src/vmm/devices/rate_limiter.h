#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>

namespace corral::vmm {

/// One token bucket: `rate` tokens per second, holding at most `burst` (0: burst = rate, one
/// second's worth).
struct TokenBucketConfig {
    uint64_t rate = 0;
    uint64_t burst = 0;
};

/// A rate limit on bytes and on operations (either or both), each a token bucket, shared by a
/// device's worker to throttle what the guest asks for (Firecracker's RateLimiter, simplified).
///
/// consume(bytes) takes one operation token and `bytes` byte tokens, all or nothing. A request
/// larger than a bucket's burst could never fit: it is let through when that bucket is full and
/// leaves the bucket in debt (negative), so it costs its full size in time instead of wedging the
/// queue. When consume() refuses, time_until_available(bytes) says how long to wait (arm a
/// timerfd with it, then call consume() again).
///
/// Thread-safe (one mutex; nothing is called while it is held). The clock is injectable for
/// tests; it must be monotonic.
class RateLimiter {
public:
    using Clock = std::function<std::chrono::nanoseconds()>;

    /// A bucket with rate 0 is "no limit" for that dimension.
    RateLimiter(std::optional<TokenBucketConfig> bytes, std::optional<TokenBucketConfig> ops,
                Clock clock = steady_now);

    /// Takes the tokens for one operation of `bytes` bytes, or nothing; true when taken.
    bool consume(uint64_t bytes);
    /// How long until consume(bytes) would succeed (0 when it would now).
    std::chrono::nanoseconds time_until_available(uint64_t bytes);
    /// Whether any limit is set (an unlimited limiter always consumes).
    bool limited() {
        std::lock_guard lock(m_mutex);
        return m_bytes.limited() || m_ops.limited();
    }
    /// Replaces both buckets (rate 0 or nullopt: that dimension unlimited), each starting full,
    /// while workers may be consuming: a limit changed live on a running VM. A worker waiting on
    /// a timer armed for the old rate asks again when it fires.
    void reconfigure(std::optional<TokenBucketConfig> bytes, std::optional<TokenBucketConfig> ops);

    static std::chrono::nanoseconds steady_now() {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now().time_since_epoch());
    }

private:
    struct Bucket {
        double rate = 0;      // tokens per second; 0: unlimited
        double capacity = 0;  // burst
        double tokens = 0;    // may go negative (debt) after an oversized request
        bool limited() const { return rate > 0; }
        void refill(double seconds);
        bool can_take(double amount) const;
        double seconds_until(double amount) const;
    };
    static Bucket make_bucket(const std::optional<TokenBucketConfig>& config);
    void refill_locked();

    std::mutex m_mutex;  // guards the buckets and m_last
    Clock m_clock;
    Bucket m_bytes;
    Bucket m_ops;
    std::chrono::nanoseconds m_last;
};

}  // namespace corral::vmm
