#include "vmm/arch/x86_64/aml.h"

#include <fmt/format.h>

#include <array>
#include <limits>
#include <string>

namespace corral::vmm::x86::aml {
namespace {

// Opcodes and prefixes, ACPI 6.5 §20.2.
constexpr uint8_t k_zero_op = 0x00;
constexpr uint8_t k_one_op = 0x01;
constexpr uint8_t k_name_op = 0x08;
constexpr uint8_t k_byte_prefix = 0x0A;
constexpr uint8_t k_word_prefix = 0x0B;
constexpr uint8_t k_dword_prefix = 0x0C;
constexpr uint8_t k_qword_prefix = 0x0E;
constexpr uint8_t k_scope_op = 0x10;
constexpr uint8_t k_buffer_op = 0x11;
constexpr uint8_t k_package_op = 0x12;
constexpr uint8_t k_dual_name_prefix = 0x2E;
constexpr uint8_t k_multi_name_prefix = 0x2F;
constexpr uint8_t k_ext_op_prefix = 0x5B;
constexpr uint8_t k_device_op = 0x82;  // after ExtOpPrefix
constexpr uint8_t k_root_char = '\\';
constexpr uint8_t k_null_name = 0x00;

// Resource descriptor tags, ACPI 6.5 §6.4.
constexpr uint8_t k_irq_tag = 0x22;            // small item 0x04, length 2 (no flags byte)
constexpr uint8_t k_io_tag = 0x47;             // small item 0x08, length 7
constexpr uint8_t k_end_tag = 0x79;            // small item 0x0F, length 1
constexpr uint8_t k_dword_address_tag = 0x87;  // large item 0x07
constexpr uint8_t k_word_address_tag = 0x88;   // large item 0x08
constexpr uint8_t k_resource_type_memory = 0;
constexpr uint8_t k_resource_type_io = 1;
constexpr uint8_t k_resource_type_bus = 2;
// General flags of an address space descriptor: producer (bit 0 clear), positive decode
// (bit 1 clear), minimum and maximum address fixed (bits 2 and 3).
constexpr uint8_t k_address_flags_fixed_producer = 0x0C;

void append(Bytes& out, std::span<const uint8_t> bytes) {
    out.insert(out.end(), bytes.begin(), bytes.end());
}

template <typename T>
void append_le(Bytes& out, T value) {
    for (size_t i = 0; i < sizeof(T); ++i)
        out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

bool is_lead_name_char(char c) {
    return (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
    return is_lead_name_char(c) || (c >= '0' && c <= '9');
}

Result<std::array<uint8_t, 4>> name_seg(std::string_view seg, std::string_view path) {
    if (seg.empty() || seg.size() > 4 || !is_lead_name_char(seg[0]))
        return fail(fmt::format(
            "AML name segment '{}' in '{}' must be 1-4 characters starting with A-Z or _", seg,
            path));
    std::array<uint8_t, 4> out{'_', '_', '_', '_'};
    for (size_t i = 0; i < seg.size(); ++i) {
        if (!is_name_char(seg[i]))
            return fail(fmt::format("AML name segment '{}' in '{}' may only hold A-Z, 0-9 and _",
                                    seg, path));
        out[i] = static_cast<uint8_t>(seg[i]);
    }
    return out;
}

// Opcode bytes followed by PkgLength and body: the shape of Scope, Device, Package and Buffer.
Result<Bytes> package_like(std::span<const uint8_t> opcode, std::span<const uint8_t> body) {
    Bytes out(opcode.begin(), opcode.end());
    append(out, TRY(with_pkg_length(body)));
    return out;
}

Result<Bytes> named_block(std::span<const uint8_t> opcode, std::string_view path,
                          std::span<const uint8_t> terms) {
    Bytes body = TRY(name_string(path));
    append(body, terms);
    return package_like(opcode, body);
}

uint8_t hex_value(char c) {
    return static_cast<uint8_t>(c <= '9' ? c - '0' : c - 'A' + 10);
}

}  // namespace

Result<Bytes> encode_pkg_length(uint32_t length) {
    if (length <= 0x3F)
        return Bytes{static_cast<uint8_t>(length)};
    if (length > k_max_pkg_length)
        return fail(fmt::format("AML PkgLength 0x{:x} exceeds the maximum 0x{:x}", length,
                                k_max_pkg_length));
    // Multi-byte form: bits 7:6 of the lead byte count the bytes that follow, bits 5:4 stay zero,
    // bits 3:0 hold the least significant nibble; each following byte holds the next 8 bits.
    uint8_t follow = length <= 0xFFF ? 1 : length <= 0xFFFFF ? 2 : 3;
    Bytes out{static_cast<uint8_t>((follow << 6) | (length & 0x0F))};
    for (uint8_t i = 0; i < follow; ++i)
        out.push_back(static_cast<uint8_t>(length >> (4 + 8 * i)));
    return out;
}

Result<Bytes> with_pkg_length(std::span<const uint8_t> body) {
    // The encoded value counts the PkgLength bytes too, so pick the smallest encoding size k
    // whose range holds body + k.
    constexpr std::array<uint64_t, 4> k_limits{0x3F, 0xFFF, 0xFFFFF, k_max_pkg_length};
    for (size_t k = 1; k <= k_limits.size(); ++k) {
        uint64_t total = body.size() + k;
        if (total <= k_limits[k - 1]) {
            Bytes out = TRY(encode_pkg_length(static_cast<uint32_t>(total)));
            append(out, body);
            return out;
        }
    }
    return fail(
        fmt::format("AML package body of {} bytes is too large for a PkgLength", body.size()));
}

Result<Bytes> name_string(std::string_view path) {
    Bytes out;
    std::string_view rest = path;
    if (!rest.empty() && rest.front() == '\\') {
        out.push_back(k_root_char);
        rest.remove_prefix(1);
    }
    std::vector<std::array<uint8_t, 4>> segs;
    while (!rest.empty()) {
        size_t dot = rest.find('.');
        segs.push_back(TRY(name_seg(rest.substr(0, dot), path)));
        if (dot == std::string_view::npos)
            break;
        rest.remove_prefix(dot + 1);
        if (rest.empty())
            return fail(fmt::format("AML name '{}' ends with '.'", path));
    }
    if (segs.empty()) {
        if (out.empty())
            return fail("AML name must not be empty");
        out.push_back(k_null_name);  // "\" alone: the root scope
        return out;
    }
    if (segs.size() > 255)
        return fail(fmt::format("AML name '{}' has more than 255 segments", path));
    if (segs.size() == 2)
        out.push_back(k_dual_name_prefix);
    if (segs.size() > 2) {
        out.push_back(k_multi_name_prefix);
        out.push_back(static_cast<uint8_t>(segs.size()));
    }
    for (const auto& seg : segs)
        append(out, seg);
    return out;
}

Bytes integer(uint64_t value) {
    if (value == 0)
        return {k_zero_op};
    if (value == 1)
        return {k_one_op};
    Bytes out;
    if (value <= 0xFF) {
        out.push_back(k_byte_prefix);
        append_le(out, static_cast<uint8_t>(value));
    } else if (value <= 0xFFFF) {
        out.push_back(k_word_prefix);
        append_le(out, static_cast<uint16_t>(value));
    } else if (value <= 0xFFFFFFFF) {
        out.push_back(k_dword_prefix);
        append_le(out, static_cast<uint32_t>(value));
    } else {
        out.push_back(k_qword_prefix);
        append_le(out, value);
    }
    return out;
}

Result<Bytes> name(std::string_view path, std::span<const uint8_t> object) {
    Bytes out{k_name_op};
    append(out, TRY(name_string(path)));
    append(out, object);
    return out;
}

Result<Bytes> package(std::span<const Bytes> elements) {
    if (elements.size() > 255)
        return fail(fmt::format("AML Package of {} elements exceeds 255 (use VarPackage)",
                                elements.size()));
    Bytes body{static_cast<uint8_t>(elements.size())};
    for (const auto& element : elements)
        append(body, element);
    const uint8_t opcode[] = {k_package_op};
    return package_like(opcode, body);
}

Result<Bytes> buffer(std::span<const uint8_t> bytes) {
    Bytes body = integer(bytes.size());
    append(body, bytes);
    const uint8_t opcode[] = {k_buffer_op};
    return package_like(opcode, body);
}

Result<Bytes> scope(std::string_view path, std::span<const uint8_t> terms) {
    const uint8_t opcode[] = {k_scope_op};
    return named_block(opcode, path, terms);
}

Result<Bytes> device(std::string_view path, std::span<const uint8_t> terms) {
    const uint8_t opcode[] = {k_ext_op_prefix, k_device_op};
    return named_block(opcode, path, terms);
}

Result<Bytes> eisa_id(std::string_view id) {
    auto is_hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
    bool valid = id.size() == 7;
    for (size_t i = 0; valid && i < 7; ++i)
        valid = i < 3 ? (id[i] >= 'A' && id[i] <= 'Z') : is_hex(id[i]);
    if (!valid)
        return fail(fmt::format("EISA id '{}' must be three letters A-Z and four hex digits", id));
    // Compressed EISA id (the ASL EISAID macro): three 5-bit letters ('A' = 1) in the first two
    // bytes, big-endian, then the four hex digits; the 4 bytes are stored as a DWordConst.
    auto letter = [&](size_t i) { return static_cast<uint16_t>((id[i] - 0x40) & 0x1F); };
    uint16_t letters = static_cast<uint16_t>((letter(0) << 10) | (letter(1) << 5) | letter(2));
    return Bytes{k_dword_prefix, static_cast<uint8_t>(letters >> 8),
                 static_cast<uint8_t>(letters & 0xFF),
                 static_cast<uint8_t>((hex_value(id[3]) << 4) | hex_value(id[4])),
                 static_cast<uint8_t>((hex_value(id[5]) << 4) | hex_value(id[6]))};
}

Bytes concat(std::initializer_list<std::span<const uint8_t>> parts) {
    Bytes out;
    for (auto part : parts)
        append(out, part);
    return out;
}

Bytes io_port(uint16_t base, uint8_t length) {
    Bytes out{k_io_tag, 0x01};  // information bit 0: decodes all 16 address bits
    append_le(out, base);       // range minimum
    append_le(out, base);       // range maximum: the range is fixed
    out.push_back(1);           // alignment
    out.push_back(length);
    return out;
}

Result<Bytes> irq_no_flags(uint8_t irq) {
    if (irq > 15)
        return fail(fmt::format("IRQ descriptor can only name ISA IRQs 0-15, not {}", irq));
    Bytes out{k_irq_tag};
    append_le(out, static_cast<uint16_t>(1u << irq));
    return out;
}

namespace {

template <typename T>
Result<Bytes> address_space(uint8_t tag, uint8_t resource_type, uint8_t type_flags, T min, T max) {
    if (max < min)
        return fail(fmt::format("address range 0x{:x}-0x{:x} is reversed", min, max));
    uint64_t length = uint64_t{max} - min + 1;
    if (length > std::numeric_limits<T>::max())
        return fail(
            fmt::format("address range 0x{:x}-0x{:x} is too long for its descriptor", min, max));
    Bytes out{tag};
    // Descriptor length after the 3-byte header: type, flags, type flags, then five fields
    // (granularity, minimum, maximum, translation offset, length).
    append_le(out, static_cast<uint16_t>(3 + 5 * sizeof(T)));
    out.push_back(resource_type);
    out.push_back(k_address_flags_fixed_producer);
    out.push_back(type_flags);
    append_le(out, T{0});  // granularity
    append_le(out, min);
    append_le(out, max);
    append_le(out, T{0});  // translation offset
    append_le(out, static_cast<T>(length));
    return out;
}

}  // namespace

Result<Bytes> word_bus_number(uint16_t min, uint16_t max) {
    return address_space<uint16_t>(k_word_address_tag, k_resource_type_bus, 0, min, max);
}

Result<Bytes> word_io(uint16_t min, uint16_t max) {
    // Type-specific flags bits 1:0 = 3: the range covers both ISA and non-ISA addresses
    // (§6.4.3.5.4).
    return address_space<uint16_t>(k_word_address_tag, k_resource_type_io, 0x03, min, max);
}

Result<Bytes> dword_memory(uint32_t min, uint32_t max) {
    // Type-specific flags: bit 0 read-write, bits 2:1 = 0 non-cacheable (§6.4.3.5.4).
    return address_space<uint32_t>(k_dword_address_tag, k_resource_type_memory, 0x01, min, max);
}

Result<Bytes> resource_template(std::span<const Bytes> descriptors) {
    Bytes body;
    for (const auto& descriptor : descriptors)
        append(body, descriptor);
    // End Tag; a checksum byte of zero means "treat as valid" (§6.4.2.9).
    body.push_back(k_end_tag);
    body.push_back(0x00);
    return buffer(body);
}

}  // namespace corral::vmm::x86::aml
