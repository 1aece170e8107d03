#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "base/result.h"

namespace corral {

/// Owns an mmap()ed region and unmaps it on destruction. Move-only.
class Mapping {
public:
    Mapping() = default;
    Mapping(void* address, size_t size) : m_address(address), m_size(size) {}
    Mapping(Mapping&& other) noexcept
        : m_address(std::exchange(other.m_address, nullptr)), m_size(std::exchange(other.m_size, 0)) {}
    Mapping& operator=(Mapping&& other) noexcept;
    Mapping(const Mapping&) = delete;
    Mapping& operator=(const Mapping&) = delete;
    ~Mapping();

    /// Maps `size` bytes of anonymous, private, zeroed memory.
    static Result<Mapping> anonymous(size_t size, int extra_flags = 0);
    /// Maps `size` bytes of `fd` from offset 0, shared.
    static Result<Mapping> shared_file(int fd, size_t size);

    uint8_t* data() const { return static_cast<uint8_t*>(m_address); }
    size_t size() const { return m_size; }

private:
    void* m_address = nullptr;
    size_t m_size = 0;
};

}  // namespace corral
