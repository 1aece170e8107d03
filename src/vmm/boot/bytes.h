#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <type_traits>

#include <fmt/format.h>

/// Small helpers shared by the boot loaders: overflow-safe range checks on untrusted offsets and
/// sizes (a kernel file or an initrd is user input), and size formatting for error messages.
namespace corral::vmm::boot_detail {

/// True when [offset, offset + length) lies inside [0, size). Never computes offset + length,
/// which could wrap for values read from a file.
constexpr bool range_fits(uint64_t offset, uint64_t length, uint64_t size) {
    return offset <= size && length <= size - offset;
}

/// True when address + length (the end of a range) is representable in 64 bits.
constexpr bool range_is_addressable(uint64_t address, uint64_t length) {
    return address <= UINT64_MAX - length;
}

/// a + b, or UINT64_MAX when that overflows: a size that large then fails every range check.
constexpr uint64_t saturating_add(uint64_t a, uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/// Reads a little-endian T at `offset`, or nothing when the bytes are not all inside `bytes`.
/// x86-64 hosts are little-endian, so a memcpy is the decoding.
template <typename T>
std::optional<T> read_le(std::span<const uint8_t> bytes, uint64_t offset) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (!range_fits(offset, sizeof(T), bytes.size()))
        return std::nullopt;
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

/// "700 bytes" below 1 MiB, else "3 MiB" rounded up, so that "needs N MiB" never understates.
inline std::string format_size(uint64_t bytes) {
    constexpr uint64_t mib = 1024 * 1024;
    if (bytes < mib)
        return fmt::format("{} bytes", bytes);
    return fmt::format("{} MiB", bytes / mib + (bytes % mib != 0 ? 1 : 0));
}

}  // namespace corral::vmm::boot_detail
