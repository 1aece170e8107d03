#include "vmm/devices/rate_limiter.h"

#include <algorithm>
#include <cmath>

namespace corral::vmm {

RateLimiter::Bucket RateLimiter::make_bucket(const std::optional<TokenBucketConfig>& config) {
    Bucket bucket;
    if (!config || config->rate == 0) return bucket;
    bucket.rate = static_cast<double>(config->rate);
    bucket.capacity = static_cast<double>(config->burst ? config->burst : config->rate);
    bucket.tokens = bucket.capacity;  // start full: a fresh VM may burst
    return bucket;
}

RateLimiter::RateLimiter(std::optional<TokenBucketConfig> bytes, std::optional<TokenBucketConfig> ops, Clock clock)
    : m_clock(std::move(clock)), m_bytes(make_bucket(bytes)), m_ops(make_bucket(ops)), m_last(m_clock()) {}

void RateLimiter::reconfigure(std::optional<TokenBucketConfig> bytes, std::optional<TokenBucketConfig> ops) {
    std::lock_guard lock(m_mutex);
    m_bytes = make_bucket(bytes);
    m_ops = make_bucket(ops);
    m_last = m_clock();
}

void RateLimiter::Bucket::refill(double seconds) {
    if (!limited()) return;
    tokens = std::min(capacity, tokens + rate * seconds);
}

bool RateLimiter::Bucket::can_take(double amount) const {
    if (!limited()) return true;
    // An amount above the burst can never be covered: it goes through from a full bucket.
    if (amount > capacity) return tokens >= capacity;
    return tokens >= amount;
}

double RateLimiter::Bucket::seconds_until(double amount) const {
    if (can_take(amount)) return 0;
    double needed = std::min(amount, capacity) - tokens;
    return needed / rate;
}

void RateLimiter::refill_locked() {
    auto now = m_clock();
    if (now <= m_last) return;  // a clock that went backwards adds nothing
    double seconds = std::chrono::duration<double>(now - m_last).count();
    m_last = now;
    m_bytes.refill(seconds);
    m_ops.refill(seconds);
}

bool RateLimiter::consume(uint64_t bytes) {
    std::lock_guard lock(m_mutex);
    refill_locked();
    auto amount = static_cast<double>(bytes);
    if (!m_bytes.can_take(amount) || !m_ops.can_take(1)) return false;
    if (m_bytes.limited()) m_bytes.tokens -= amount;
    if (m_ops.limited()) m_ops.tokens -= 1;
    return true;
}

std::chrono::nanoseconds RateLimiter::time_until_available(uint64_t bytes) {
    std::lock_guard lock(m_mutex);
    refill_locked();
    double seconds = std::max(m_bytes.seconds_until(static_cast<double>(bytes)), m_ops.seconds_until(1));
    if (seconds <= 0) return std::chrono::nanoseconds(0);
    // Round up so that a timer armed with it fires when the tokens are really there.
    return std::chrono::nanoseconds(static_cast<int64_t>(std::ceil(seconds * 1e9)));
}

}  // namespace corral::vmm
