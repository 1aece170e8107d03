#include "base/mapping.h"

#include <sys/mman.h>

namespace corral {

Mapping& Mapping::operator=(Mapping&& other) noexcept {
    if (this != &other) {
        if (m_address) ::munmap(m_address, m_size);
        m_address = std::exchange(other.m_address, nullptr);
        m_size = std::exchange(other.m_size, 0);
    }
    return *this;
}

Mapping::~Mapping() {
    if (m_address) ::munmap(m_address, m_size);
}

Result<Mapping> Mapping::anonymous(size_t size, int extra_flags) {
    void* address = ::mmap(nullptr, size, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
    if (address == MAP_FAILED) return fail_errno("mmap of " + std::to_string(size) + " bytes");
    return Mapping(address, size);
}

Result<Mapping> Mapping::shared_file(int fd, size_t size) {
    void* address = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (address == MAP_FAILED) return fail_errno("mmap of a shared file");
    return Mapping(address, size);
}

}  // namespace corral
