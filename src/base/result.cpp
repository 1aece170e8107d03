#include "base/result.h"

#include <cstring>

namespace corral {

std::string Error::describe() const {
    if (m_errno == 0) return m_message;
    return m_message + ": " + std::strerror(m_errno);
}

}  // namespace corral
