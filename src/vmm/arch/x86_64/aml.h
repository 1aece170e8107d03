#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"

/// A small AML (ACPI Machine Language) byte builder: just the terms the DSDT of a Corral VM
/// needs, each returning its encoded bytes so that terms compose by nesting.
/// Encodings follow ACPI 6.5 §20.2 (AML grammar) and §6.4 (resource data types).
namespace corral::vmm::x86::aml {

using Bytes = std::vector<uint8_t>;

/// The largest value a PkgLength can encode (28 bits, ACPI 6.5 §20.2.4).
constexpr uint32_t k_max_pkg_length = 0x0FFFFFFF;

/// Encodes `length` as a PkgLength (ACPI 6.5 §20.2.4): one byte up to 0x3F, else a lead byte with
/// the byte count in bits 7:6 and the low nibble, followed by 1 to 3 bytes of the higher bits.
/// `length` is the final value, which by definition already counts the PkgLength bytes themselves.
Result<Bytes> encode_pkg_length(uint32_t length);

/// `body` prefixed with the PkgLength that covers it and itself (the form every package-like term
/// uses).
Result<Bytes> with_pkg_length(std::span<const uint8_t> body);

/// A NameString (ACPI 6.5 §20.2.2): an optional root prefix `\`, then NameSegs separated by `.`.
/// Segments shorter than 4 characters are padded with `_` ("RTC" -> "RTC_").
Result<Bytes> name_string(std::string_view path);

/// The shortest integer encoding: ZeroOp, OneOp, or Byte/Word/DWord/QWordPrefix + value.
Bytes integer(uint64_t value);

/// DefName: `Name (path, object)`.
Result<Bytes> name(std::string_view path, std::span<const uint8_t> object);

/// DefPackage: `Package (n) { elements... }` with NumElements = elements.size() (at most 255).
Result<Bytes> package(std::span<const Bytes> elements);

/// DefBuffer: `Buffer (n) { bytes... }`.
Result<Bytes> buffer(std::span<const uint8_t> bytes);

/// DefScope: `Scope (path) { terms }`.
Result<Bytes> scope(std::string_view path, std::span<const uint8_t> terms);

/// DefDevice: `Device (path) { terms }`.
Result<Bytes> device(std::string_view path, std::span<const uint8_t> terms);

/// `EisaId ("PNP0501")` as the DWordConst it compiles to: three letters A-Z and four hex digits.
Result<Bytes> eisa_id(std::string_view id);

/// Concatenates encoded terms, in order.
Bytes concat(std::initializer_list<std::span<const uint8_t>> parts);

// Resource descriptors (ACPI 6.5 §6.4), to be wrapped by resource_template().

/// `IO (Decode16, base, base, 1, length)`: a fixed range of I/O ports (§6.4.2.5).
Bytes io_port(uint16_t base, uint8_t length);

/// `IRQNoFlags () { irq }`: an edge-triggered, active-high ISA IRQ 0..15 (§6.4.2.1).
Result<Bytes> irq_no_flags(uint8_t irq);

/// `WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, ...)` for buses [min, max]
/// (§6.4.3.5.3).
Result<Bytes> word_bus_number(uint16_t min, uint16_t max);

/// `WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, ...)` for [min, max]
/// (§6.4.3.5.3).
Result<Bytes> word_io(uint16_t min, uint16_t max);

/// `DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, ...)`
/// for [min, max] (§6.4.3.5.2).
Result<Bytes> dword_memory(uint32_t min, uint32_t max);

/// `ResourceTemplate () { descriptors }`: a Buffer holding the descriptors and an End Tag
/// (§6.4.2.9).
Result<Bytes> resource_template(std::span<const Bytes> descriptors);

}  // namespace corral::vmm::x86::aml
