#include "vmm/snapshot/state_stream.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "vmm/snapshot/crc32c.h"

namespace corral::vmm::snapshot {

std::string tag_name(uint32_t tag) {
    std::string name;
    for (int i = 0; i < 4; ++i) {
        char c = static_cast<char>((tag >> (8 * i)) & 0xFF);
        if (c < 0x20 || c > 0x7E)
            return fmt::format("0x{:08x}", tag);
        name.push_back(c);
    }
    return name;
}

void StateWriter::u8(uint8_t value) { m_data.push_back(value); }

void StateWriter::u16(uint16_t value) {
    for (int i = 0; i < 2; ++i)
        m_data.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void StateWriter::u32(uint32_t value) {
    for (int i = 0; i < 4; ++i)
        m_data.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void StateWriter::u64(uint64_t value) {
    for (int i = 0; i < 8; ++i)
        m_data.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

void StateWriter::bytes(std::span<const uint8_t> data) {
    u32(static_cast<uint32_t>(data.size()));
    fixed_bytes(data);
}

void StateWriter::fixed_bytes(std::span<const uint8_t> data) {
    m_data.insert(m_data.end(), data.begin(), data.end());
}

void StateWriter::section(uint32_t tag, uint16_t version,
                          const std::function<void(StateWriter&)>& fill) {
    size_t header = m_data.size();
    m_data.resize(header + k_section_header_size);
    fill(*this);
    size_t payload = header + k_section_header_size;
    std::span<const uint8_t> body(m_data.data() + payload, m_data.size() - payload);
    uint32_t crc = crc32c(body);
    auto length = static_cast<uint32_t>(body.size());
    auto put32 = [&](size_t at, uint32_t value) {
        for (int i = 0; i < 4; ++i)
            m_data[at + i] = static_cast<uint8_t>(value >> (8 * i));
    };
    put32(header, tag);
    m_data[header + 4] = static_cast<uint8_t>(version);
    m_data[header + 5] = static_cast<uint8_t>(version >> 8);
    m_data[header + 6] = 0;
    m_data[header + 7] = 0;
    put32(header + 8, length);
    put32(header + 12, crc);
}

StateReader::StateReader(std::span<const uint8_t> data, std::string context)
    : m_data(data), m_context(std::move(context)) {}

std::span<const uint8_t> StateReader::take(size_t size) {
    if (m_error)
        return {};
    if (size > remaining()) {
        fail(fmt::format("truncated: {} bytes needed at offset {}, {} left", size, m_offset,
                         remaining()));
        return {};
    }
    auto span = m_data.subspan(m_offset, size);
    m_offset += size;
    return span;
}

uint64_t StateReader::little_endian(size_t size) {
    auto span = take(size);
    uint64_t value = 0;
    for (size_t i = 0; i < span.size(); ++i)
        value |= static_cast<uint64_t>(span[i]) << (8 * i);
    return value;
}

uint8_t StateReader::u8() { return static_cast<uint8_t>(little_endian(1)); }
uint16_t StateReader::u16() { return static_cast<uint16_t>(little_endian(2)); }
uint32_t StateReader::u32() { return static_cast<uint32_t>(little_endian(4)); }
uint64_t StateReader::u64() { return little_endian(8); }

bool StateReader::boolean() {
    uint8_t value = u8();
    if (value > 1)
        fail(fmt::format("a boolean at offset {} is {}, not 0 or 1", m_offset - 1, value));
    return value == 1;
}

std::vector<uint8_t> StateReader::bytes(size_t max_size) {
    uint32_t size = u32();
    if (!ok())
        return {};
    if (size > max_size) {
        fail(fmt::format("a byte string at offset {} is {} bytes long; at most {} allowed",
                         m_offset - 4, size, max_size));
        return {};
    }
    auto span = take(size);
    return {span.begin(), span.end()};
}

void StateReader::fixed_bytes(std::span<uint8_t> out) {
    auto span = take(out.size());
    if (span.size() == out.size())
        std::copy(span.begin(), span.end(), out.begin());
    else
        std::fill(out.begin(), out.end(), 0);
}

std::optional<uint32_t> StateReader::peek_tag() const {
    if (m_error || remaining() < 4)
        return std::nullopt;
    uint32_t value = 0;
    for (size_t i = 0; i < 4; ++i)
        value |= static_cast<uint32_t>(m_data[m_offset + i]) << (8 * i);
    return value;
}

void StateReader::section(uint32_t expected_tag, uint16_t max_version,
                          const std::function<void(StateReader&, uint16_t)>& read) {
    size_t start = m_offset;
    uint32_t found_tag = u32();
    uint16_t version = u16();
    uint16_t reserved = u16();
    uint32_t length = u32();
    uint32_t crc = u32();
    if (!ok())
        return;
    if (found_tag != expected_tag)
        return fail(fmt::format("section '{}' expected at offset {}, found '{}'",
                                tag_name(expected_tag), start, tag_name(found_tag)));
    if (version == 0 || version > max_version)
        return fail(fmt::format("section '{}' has version {}; this build reads versions 1-{}",
                                tag_name(expected_tag), version, max_version));
    if (reserved != 0)
        return fail(fmt::format("section '{}' has reserved bits set", tag_name(expected_tag)));
    if (length > remaining())
        return fail(fmt::format("section '{}' is truncated: {} bytes announced, {} left",
                                tag_name(expected_tag), length, remaining()));
    auto payload = take(length);
    if (crc32c(payload) != crc)
        return fail(fmt::format("section '{}' fails its checksum (corrupted)",
                                tag_name(expected_tag)));
    StateReader inner(payload, m_context + " section '" + tag_name(expected_tag) + "'");
    read(inner, version);
    if (auto result = inner.finish(); !result)
        m_error = result.error().message();
}

void StateReader::fail(std::string message) {
    if (!m_error)
        m_error = m_context + ": " + message;
}

Result<void> StateReader::finish() const {
    if (m_error)
        return corral::fail(ErrorKind::Invalid, *m_error);
    if (remaining() != 0)
        return corral::fail(ErrorKind::Invalid,
                            fmt::format("{}: {} unexpected bytes after the end", m_context,
                                        remaining()));
    return {};
}

}  // namespace corral::vmm::snapshot
