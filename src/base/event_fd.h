#pragma once

#include <cstdint>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral {

/// A Linux eventfd: a counter other threads (or KVM, via ioeventfd/irqfd) signal to wake a waiter.
class EventFd {
public:
    static Result<EventFd> create(unsigned flags = 0);

    int fd() const { return m_fd.get(); }
    /// Adds `value` to the counter, waking waiters.
    void signal(uint64_t value = 1) const;
    /// Reads and clears the counter; 0 if it was empty (non-blocking eventfds only).
    uint64_t consume() const;

private:
    explicit EventFd(UniqueFd fd) : m_fd(std::move(fd)) {}
    UniqueFd m_fd;
};

}  // namespace corral
