#pragma once

// Forwards Progress at most every 100 ms (the contract of storage/copy.h), always passing the
// first and the final call through. Shared by the image copies and the backup operations.

#include <chrono>
#include <cstdint>

#include "storage/copy.h"

namespace corral::storage {

class ThrottledProgress {
public:
    ThrottledProgress(const Progress& progress, uint64_t total) : m_progress(progress), m_total(total) {}
    /// The callback's answer, or Continue for a call left out.
    Proceed report(uint64_t done) {
        if (!m_progress)
            return Proceed::Continue;
        auto now = std::chrono::steady_clock::now();
        if (done != m_total && m_reported && now - m_last < std::chrono::milliseconds(100))
            return Proceed::Continue;
        m_last = now;
        m_reported = true;
        return m_progress(done, m_total);
    }

private:
    const Progress& m_progress;
    uint64_t m_total;
    std::chrono::steady_clock::time_point m_last;
    bool m_reported = false;
};

}  // namespace corral::storage
