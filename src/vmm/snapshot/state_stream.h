#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"

namespace corral::vmm::snapshot {

/// A section tag: four ASCII characters ("SERL"), stored little-endian as they read.
constexpr uint32_t tag(const char (&name)[5]) {
    return static_cast<uint32_t>(static_cast<uint8_t>(name[0])) |
           static_cast<uint32_t>(static_cast<uint8_t>(name[1])) << 8 |
           static_cast<uint32_t>(static_cast<uint8_t>(name[2])) << 16 |
           static_cast<uint32_t>(static_cast<uint8_t>(name[3])) << 24;
}

/// "SERL" for a tag, or its hex value when it is not printable (for error messages).
std::string tag_name(uint32_t tag);

/// Bytes of a section header: tag (u32), version (u16), reserved (u16, 0), payload length
/// (u32), CRC-32C of the payload (u32).
inline constexpr size_t k_section_header_size = 16;

/// Serialises component state: little-endian integers, length-prefixed byte strings, and
/// nested sections that carry a tag, a version, a length and a checksum, so a reader can
/// check each component's bytes before decoding them. Writing cannot fail.
class StateWriter {
public:
    void u8(uint8_t value);
    void u16(uint16_t value);
    void u32(uint32_t value);
    void u64(uint64_t value);
    void i64(int64_t value) { u64(static_cast<uint64_t>(value)); }
    void boolean(bool value) { u8(value ? 1 : 0); }
    /// A u32 length, then the bytes (read back with StateReader::bytes()).
    void bytes(std::span<const uint8_t> data);
    /// The bytes with no length (read back with StateReader::fixed_bytes(), same size).
    void fixed_bytes(std::span<const uint8_t> data);
    /// A section: `fill` writes its payload into this writer; the header is completed after.
    void section(uint32_t tag, uint16_t version, const std::function<void(StateWriter&)>& fill);

    /// Room for `bytes` in all, so that a large payload is not copied as it grows.
    void reserve(size_t bytes) { m_data.reserve(bytes); }

    const std::vector<uint8_t>& data() const { return m_data; }
    std::vector<uint8_t> take() { return std::move(m_data); }

private:
    std::vector<uint8_t> m_data;
};

/// Reads what a StateWriter wrote, from bytes that may be truncated or hostile. Every read is
/// bounds-checked; the first failure is kept (later reads return zeros and change nothing), and
/// finish() reports it. Decoders therefore read a whole struct, then check finish() or ok()
/// before anything uses the values, and validate the values before applying them.
class StateReader {
public:
    /// `context` names what is read, for error messages ("serial state").
    explicit StateReader(std::span<const uint8_t> data, std::string context = "state");

    uint8_t u8();
    uint16_t u16();
    uint32_t u32();
    uint64_t u64();
    int64_t i64() { return static_cast<int64_t>(u64()); }
    /// A byte that must be 0 or 1.
    bool boolean();
    /// A length-prefixed byte string of at most `max_size` bytes (a longer one is an error, so
    /// a hostile length never allocates more than that).
    std::vector<uint8_t> bytes(size_t max_size);
    /// Exactly out.size() bytes, with no length prefix.
    void fixed_bytes(std::span<uint8_t> out);
    /// Reads a section header that must carry `tag` and a version between 1 and `max_version`,
    /// checks the payload's length and CRC, and calls `read` with a reader over the payload and
    /// the version found. The payload must be consumed exactly. Errors inside propagate here.
    void section(uint32_t tag, uint16_t max_version,
                 const std::function<void(StateReader&, uint16_t version)>& read);
    /// The tag of the next section, without consuming it (nullopt at the end or on error).
    std::optional<uint32_t> peek_tag() const;

    /// Records a decoding error (an invalid value) unless one is already recorded.
    void fail(std::string message);
    bool ok() const { return !m_error.has_value(); }
    size_t remaining() const { return m_data.size() - m_offset; }
    /// Success when no read failed and every byte was consumed.
    Result<void> finish() const;

private:
    /// The next `size` bytes, or an empty span (and a recorded error) if fewer are left.
    std::span<const uint8_t> take(size_t size);
    uint64_t little_endian(size_t size);

    std::span<const uint8_t> m_data;
    size_t m_offset = 0;
    std::string m_context;
    std::optional<std::string> m_error;
};

/// Decodes a whole buffer with `decode` (which reads from a StateReader) and returns its value,
/// or the reader's first error. Shorthand for decoders of state structs.
template <typename T, typename Decode>
Result<T> decode_all(std::span<const uint8_t> data, std::string context, Decode decode) {
    StateReader reader(data, std::move(context));
    T value = decode(reader);
    TRY_VOID(reader.finish());
    return value;
}

}  // namespace corral::vmm::snapshot
