#include "base/event_fd.h"

#include <sys/eventfd.h>
#include <unistd.h>

namespace corral {

Result<EventFd> EventFd::create(unsigned flags) {
    int fd = ::eventfd(0, EFD_CLOEXEC | flags);
    if (fd < 0) return fail_errno("eventfd");
    return EventFd(UniqueFd(fd));
}

void EventFd::signal(uint64_t value) const {
    // A full counter (EAGAIN) already wakes the waiter, so the write's result does not matter.
    [[maybe_unused]] ssize_t n = ::write(m_fd.get(), &value, sizeof value);
}

uint64_t EventFd::consume() const {
    uint64_t value = 0;
    if (::read(m_fd.get(), &value, sizeof value) != sizeof value) return 0;
    return value;
}

}  // namespace corral
