#include "base/result.h"

#include <cstring>

namespace corral {

std::string Error::describe() const {
    if (m_errno == 0) return m_message;
    return m_message + ": " + std::strerror(m_errno);
}

ErrorKind Error::kind_of_errno(int errno_value) {
    switch (errno_value) {
        case ENOENT: return ErrorKind::NotFound;
        case EEXIST: return ErrorKind::Conflict;
        case EBUSY: return ErrorKind::Busy;
        case EINVAL:
        case ERANGE: return ErrorKind::Invalid;
        case ENODEV:
        case EAGAIN: return ErrorKind::Unavailable;
        default: return ErrorKind::Failed;
    }
}

}  // namespace corral
