#include "vmm/arch/x86_64/mptable.h"

#include <fmt/format.h>

#include <bit>
#include <cstddef>
#include <cstring>
#include <numeric>

#include "vmm/arch/x86_64/layout.h"
#include "vmm/memory/guest_memory.h"

// Intel MultiProcessor Specification 1.4 (May 1997), chapter 4 "MP Configuration Table".
namespace corral::vmm::x86 {
namespace {

static_assert(std::endian::native == std::endian::little, "MP table structures are little-endian");

#pragma pack(push, 1)
/// §4.1: MP Floating Pointer Structure.
struct MpFloatingPointer {
    char signature[4];          // "_MP_"
    uint32_t physical_address;  // of the configuration table header
    uint8_t length;             // in 16-byte paragraphs: 1
    uint8_t spec_rev;           // 4 = version 1.4
    uint8_t checksum;
    uint8_t feature1;  // 0: a configuration table is present (no default configuration)
    uint8_t feature2;  // bit 7 IMCRP clear: virtual wire mode, no IMCR
    uint8_t feature3_5[3];
};
static_assert(sizeof(MpFloatingPointer) == 16);
static_assert(offsetof(MpFloatingPointer, checksum) == 10);

/// §4.2: MP Configuration Table Header.
struct MpConfigHeader {
    char signature[4];  // "PCMP"
    uint16_t base_table_length;
    uint8_t spec_rev;
    uint8_t checksum;
    char oem_id[8];
    char product_id[12];
    uint32_t oem_table_pointer;
    uint16_t oem_table_size;
    uint16_t entry_count;
    uint32_t local_apic_address;
    uint16_t extended_table_length;
    uint8_t extended_table_checksum;
    uint8_t reserved;
};
static_assert(sizeof(MpConfigHeader) == 44);
static_assert(offsetof(MpConfigHeader, entry_count) == 34);
static_assert(offsetof(MpConfigHeader, local_apic_address) == 36);

/// §4.3.1: Processor Entry.
struct MpProcessor {
    uint8_t type;  // 0
    uint8_t local_apic_id;
    uint8_t local_apic_version;
    uint8_t cpu_flags;  // bit 0 EN, bit 1 BP
    uint32_t cpu_signature;
    uint32_t feature_flags;
    uint32_t reserved[2];
};
static_assert(sizeof(MpProcessor) == 20);

/// §4.3.2: Bus Entry.
struct MpBus {
    uint8_t type;  // 1
    uint8_t bus_id;
    char bus_type[6];
};
static_assert(sizeof(MpBus) == 8);

/// §4.3.3: I/O APIC Entry.
struct MpIoApic {
    uint8_t type;  // 2
    uint8_t id;
    uint8_t version;
    uint8_t flags;  // bit 0 EN
    uint32_t address;
};
static_assert(sizeof(MpIoApic) == 8);

/// §4.3.4 and §4.3.5: I/O and Local Interrupt Assignment Entries (same layout).
struct MpInterrupt {
    uint8_t type;  // 3 I/O, 4 local
    uint8_t interrupt_type;
    uint16_t flags;  // bits 1:0 polarity, bits 3:2 trigger mode; 0 = conforms to the bus
    uint8_t source_bus_id;
    uint8_t source_bus_irq;
    uint8_t destination_apic_id;
    uint8_t destination_pin;  // I/O APIC INTIN# or LAPIC LINTIN#
};
static_assert(sizeof(MpInterrupt) == 8);
#pragma pack(pop)

constexpr uint8_t k_entry_processor = 0;
constexpr uint8_t k_entry_bus = 1;
constexpr uint8_t k_entry_io_apic = 2;
constexpr uint8_t k_entry_io_interrupt = 3;
constexpr uint8_t k_entry_local_interrupt = 4;

// Interrupt types (§4.3.4).
constexpr uint8_t k_interrupt_int = 0;
constexpr uint8_t k_interrupt_nmi = 1;
constexpr uint8_t k_interrupt_extint = 3;

constexpr uint8_t k_spec_rev_1_4 = 4;
constexpr uint8_t k_cpu_enabled = 1 << 0;
constexpr uint8_t k_cpu_bootstrap = 1 << 1;
constexpr uint8_t k_io_apic_enabled = 1 << 0;
constexpr uint8_t k_isa_bus_id = 0;
constexpr uint8_t k_isa_irq_count = 16;
constexpr uint8_t k_all_local_apics = 0xFF;
// Versions of KVM's emulated local APIC (integrated, 0x14) and I/O APIC (82093AA-style, 0x11).
constexpr uint8_t k_local_apic_version = 0x14;
constexpr uint8_t k_io_apic_version = 0x11;
// A plausible family 6 signature; Linux takes the real one from CPUID, this is informational.
constexpr uint32_t k_cpu_signature = 0x600;
constexpr uint32_t k_cpu_features = (1u << 0) | (1u << 9);  // FPU, on-chip APIC (CPUID.1:EDX)

template <typename T>
void append(std::vector<uint8_t>& out, const T& value) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
    out.insert(out.end(), bytes, bytes + sizeof(T));
}

// §4.1 and §4.2: the checksum byte makes all bytes of the structure sum to zero.
uint8_t checksum(const uint8_t* bytes, size_t length) {
    return static_cast<uint8_t>(-std::accumulate(bytes, bytes + length, 0u));
}

MpInterrupt interrupt_entry(uint8_t type, uint8_t interrupt_type, uint8_t source_irq,
                            uint8_t destination, uint8_t pin) {
    return MpInterrupt{type, interrupt_type, 0, k_isa_bus_id, source_irq, destination, pin};
}

}  // namespace

Result<void> check_cpu_count(uint32_t cpu_count) {
    if (cpu_count < 1 || cpu_count > k_max_cpu_count)
        return fail(
            fmt::format("--cpus must be between 1 and {} (got {})", k_max_cpu_count, cpu_count));
    return {};
}

Result<std::vector<uint8_t>> build_mptable(uint32_t cpu_count) {
    TRY_VOID(check_cpu_count(cpu_count));
    const auto io_apic_id = static_cast<uint8_t>(cpu_count);

    std::vector<uint8_t> entries;
    uint16_t entry_count = 0;
    for (uint32_t i = 0; i < cpu_count; ++i) {
        MpProcessor cpu{};
        cpu.type = k_entry_processor;
        cpu.local_apic_id = static_cast<uint8_t>(i);  // KVM gives vCPU i LAPIC id i
        cpu.local_apic_version = k_local_apic_version;
        cpu.cpu_flags = k_cpu_enabled | (i == 0 ? k_cpu_bootstrap : 0);
        cpu.cpu_signature = k_cpu_signature;
        cpu.feature_flags = k_cpu_features;
        append(entries, cpu);
        ++entry_count;
    }
    // Entries are sorted by type (§4.3); the bus type string is space padded (§4.3.2).
    MpBus bus{k_entry_bus, k_isa_bus_id, {'I', 'S', 'A', ' ', ' ', ' '}};
    append(entries, bus);
    ++entry_count;
    MpIoApic io_apic{k_entry_io_apic, io_apic_id, k_io_apic_version, k_io_apic_enabled,
                     static_cast<uint32_t>(k_ioapic_address)};
    append(entries, io_apic);
    ++entry_count;
    // KVM's default GSI routing (no KVM_SET_GSI_ROUTING) sends ISA IRQ n to I/O APIC pin n, the PIT
    // included (pin 0, not pin 2 as on PC chipsets), so every ISA IRQ maps to the same-numbered
    // pin.
    for (uint8_t irq = 0; irq < k_isa_irq_count; ++irq) {
        append(entries,
               interrupt_entry(k_entry_io_interrupt, k_interrupt_int, irq, io_apic_id, irq));
        ++entry_count;
    }
    // Virtual wire: the 8259's INTR on LINTIN0 as ExtINT, NMI on LINTIN1, for all local APICs as in
    // the spec's default configurations (chapter 5).
    append(entries,
           interrupt_entry(k_entry_local_interrupt, k_interrupt_extint, 0, k_all_local_apics, 0));
    append(entries,
           interrupt_entry(k_entry_local_interrupt, k_interrupt_nmi, 0, k_all_local_apics, 1));
    entry_count += 2;

    MpConfigHeader header{};
    std::memcpy(header.signature, "PCMP", 4);
    header.base_table_length = static_cast<uint16_t>(sizeof(MpConfigHeader) + entries.size());
    header.spec_rev = k_spec_rev_1_4;
    std::memcpy(header.oem_id, "CORRAL  ", 8);
    std::memcpy(header.product_id, "CORRALVM    ", 12);
    header.entry_count = entry_count;
    header.local_apic_address = static_cast<uint32_t>(k_lapic_address);

    MpFloatingPointer pointer{};
    std::memcpy(pointer.signature, "_MP_", 4);
    pointer.physical_address = static_cast<uint32_t>(k_mptable_address + sizeof(MpFloatingPointer));
    pointer.length = 1;
    pointer.spec_rev = k_spec_rev_1_4;

    std::vector<uint8_t> out;
    append(out, pointer);
    out[offsetof(MpFloatingPointer, checksum)] = checksum(out.data(), sizeof(MpFloatingPointer));
    size_t header_offset = out.size();
    append(out, header);
    out.insert(out.end(), entries.begin(), entries.end());
    out[header_offset + offsetof(MpConfigHeader, checksum)] =
        checksum(out.data() + header_offset, header.base_table_length);

    // Linux finds the floating pointer in the first KiB of the EBDA; the table behind it may run
    // past 0xA0000 into the reserved BIOS area (254 CPUs take about 5 KiB), but must stop short of
    // the ACPI tables at k_bios_area_start.
    if (k_mptable_address + out.size() > k_bios_area_start)
        return fail(fmt::format("MP table of {} bytes for {} CPUs overlaps the ACPI area at 0x{:x}",
                                out.size(), cpu_count, k_bios_area_start));
    return out;
}

Result<void> write_mptable(const GuestMemory& memory, uint32_t cpu_count) {
    auto table = TRY_CONTEXT(build_mptable(cpu_count), "building the MP table");
    if (auto written = memory.write(k_mptable_address, table); !written)
        return fail(written.error().with_context("writing the MP table"));
    return {};
}

}  // namespace corral::vmm::x86
