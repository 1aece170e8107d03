#include "vmm/arch/x86_64/acpi.h"

#include <fmt/format.h>

#include <bit>
#include <cstddef>
#include <cstring>
#include <numeric>

#include "vmm/arch/x86_64/aml.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/mptable.h"
#include "vmm/arch/x86_64/ports.h"
#include "vmm/memory/guest_memory.h"

// Table layouts from ACPI 6.5 chapter 5 ("ACPI Software Programming Model").
//
// The tables describe a *hardware-reduced* platform (FADT flag HW_REDUCED_ACPI, ACPI 6.5 §4.1): no
// PM1 event/control blocks, no PM timer, no GPEs, no SCI, no FACS. What that means for a Linux 6.1
// guest (arch/x86/kernel/acpi/boot.c, acpi_generic_reduced_hw_init()):
//  - legacy_pic becomes null_legacy_pic, so nr_legacy_irqs() == 0: Linux never programs the 8259s
//    and does not create the identity ISA IRQ -> GSI mappings (mp_config_acpi_legacy_irqs() loops
//    over zero IRQs). A legacy driver that requests its hard-coded IRQ (8250 at IRQ 4, rtc-cmos at
//    8, i8042 at 1) finds no irq_desc. Hence the DSDT below describes COM1, the RTC and the i8042
//    with their IRQs: their PNP drivers then map the GSIs through the I/O APIC like any ACPI
//    device.
//  - x86_init.timers.timer_init is a no-op: no PIT/HPET clock event, IRQ 0 is never used, and the
//    LAPIC timer is the clock event (calibrated against the TSC, whose rate kvm-clock provides).
//  - Reset and power-off use only the FADT's RESET_REG and SLEEP_CONTROL_REG.
namespace corral::vmm::x86 {
namespace {

static_assert(std::endian::native == std::endian::little, "ACPI structures are little-endian");

#pragma pack(push, 1)
/// §5.2.5.3: Root System Description Pointer (revision 2).
struct Rsdp {
    char signature[8];  // "RSD PTR "
    uint8_t checksum;   // over the first 20 bytes (the ACPI 1.0 structure)
    char oem_id[6];
    uint8_t revision;
    uint32_t rsdt_address;
    uint32_t length;
    uint64_t xsdt_address;
    uint8_t extended_checksum;  // over the whole structure
    uint8_t reserved[3];
};
static_assert(sizeof(Rsdp) == 36);
static_assert(offsetof(Rsdp, xsdt_address) == 24);

/// §5.2.6: System Description Table Header.
struct TableHeader {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    char creator_id[4];
    uint32_t creator_revision;
};
static_assert(sizeof(TableHeader) == 36);
static_assert(offsetof(TableHeader, checksum) == 9);

/// §5.2.3.2: Generic Address Structure.
struct GenericAddress {
    uint8_t address_space_id;
    uint8_t register_bit_width;
    uint8_t register_bit_offset;
    uint8_t access_size;  // 1 = byte access
    uint64_t address;
};
static_assert(sizeof(GenericAddress) == 12);

/// §5.2.9: Fixed ACPI Description Table, revision 6 (ACPI 6.0 and later).
struct Fadt {
    TableHeader header;
    uint32_t firmware_ctrl;
    uint32_t dsdt;
    uint8_t reserved0;
    uint8_t preferred_pm_profile;
    uint16_t sci_int;
    uint32_t smi_cmd;
    uint8_t acpi_enable;
    uint8_t acpi_disable;
    uint8_t s4bios_req;
    uint8_t pstate_cnt;
    uint32_t pm1a_evt_blk;
    uint32_t pm1b_evt_blk;
    uint32_t pm1a_cnt_blk;
    uint32_t pm1b_cnt_blk;
    uint32_t pm2_cnt_blk;
    uint32_t pm_tmr_blk;
    uint32_t gpe0_blk;
    uint32_t gpe1_blk;
    uint8_t pm1_evt_len;
    uint8_t pm1_cnt_len;
    uint8_t pm2_cnt_len;
    uint8_t pm_tmr_len;
    uint8_t gpe0_blk_len;
    uint8_t gpe1_blk_len;
    uint8_t gpe1_base;
    uint8_t cst_cnt;
    uint16_t p_lvl2_lat;
    uint16_t p_lvl3_lat;
    uint16_t flush_size;
    uint16_t flush_stride;
    uint8_t duty_offset;
    uint8_t duty_width;
    uint8_t day_alrm;
    uint8_t mon_alrm;
    uint8_t century;
    uint16_t iapc_boot_arch;
    uint8_t reserved1;
    uint32_t flags;
    GenericAddress reset_reg;
    uint8_t reset_value;
    uint16_t arm_boot_arch;
    uint8_t fadt_minor_version;
    uint64_t x_firmware_ctrl;
    uint64_t x_dsdt;
    GenericAddress x_pm1a_evt_blk;
    GenericAddress x_pm1b_evt_blk;
    GenericAddress x_pm1a_cnt_blk;
    GenericAddress x_pm1b_cnt_blk;
    GenericAddress x_pm2_cnt_blk;
    GenericAddress x_pm_tmr_blk;
    GenericAddress x_gpe0_blk;
    GenericAddress x_gpe1_blk;
    GenericAddress sleep_control_reg;
    GenericAddress sleep_status_reg;
    char hypervisor_vendor_identity[8];
};
static_assert(sizeof(Fadt) == 276);
static_assert(offsetof(Fadt, iapc_boot_arch) == 109);
static_assert(offsetof(Fadt, flags) == 112);
static_assert(offsetof(Fadt, reset_reg) == 116);
static_assert(offsetof(Fadt, reset_value) == 128);
static_assert(offsetof(Fadt, fadt_minor_version) == 131);
static_assert(offsetof(Fadt, x_dsdt) == 140);
static_assert(offsetof(Fadt, sleep_control_reg) == 244);
static_assert(offsetof(Fadt, sleep_status_reg) == 256);
static_assert(offsetof(Fadt, hypervisor_vendor_identity) == 268);

/// §5.2.12: Multiple APIC Description Table header.
struct Madt {
    TableHeader header;
    uint32_t local_apic_address;
    uint32_t flags;
};
static_assert(sizeof(Madt) == 44);

/// §5.2.12.2: Processor Local APIC Structure.
struct MadtLocalApic {
    uint8_t type;  // 0
    uint8_t length;
    uint8_t processor_uid;
    uint8_t apic_id;
    uint32_t flags;  // bit 0 Enabled, bit 1 Online Capable (must be 0 when Enabled)
};
static_assert(sizeof(MadtLocalApic) == 8);

/// §5.2.12.3: I/O APIC Structure.
struct MadtIoApic {
    uint8_t type;  // 1
    uint8_t length;
    uint8_t io_apic_id;
    uint8_t reserved;
    uint32_t io_apic_address;
    uint32_t global_system_interrupt_base;
};
static_assert(sizeof(MadtIoApic) == 12);

/// §5.2.12.7: Local APIC NMI Structure.
struct MadtLocalApicNmi {
    uint8_t type;  // 4
    uint8_t length;
    uint8_t processor_uid;  // 0xFF: all processors
    uint16_t flags;         // MPS INTI flags; 0 = conforms to the bus
    uint8_t local_apic_lint;
};
static_assert(sizeof(MadtLocalApicNmi) == 6);
#pragma pack(pop)

constexpr char k_oem_id[] = "CORRAL";               // 6 characters
constexpr char k_oem_table_id[] = "CORRALVM";       // 8 characters
constexpr char k_creator_id[] = "CRRL";             // 4 characters
constexpr char k_hypervisor_vendor[] = "CORRAL  ";  // 8 characters, space padded like the OEM ids
constexpr uint32_t k_oem_revision = 1;
constexpr uint32_t k_creator_revision = 1;

constexpr uint8_t k_rsdp_revision = 2;
constexpr uint8_t k_xsdt_revision = 1;
constexpr uint8_t k_fadt_revision = 6;
constexpr uint8_t k_fadt_minor_version = 5;  // FADT "6.5"
constexpr uint8_t k_dsdt_revision = 2;       // 64-bit AML integers
constexpr uint8_t k_madt_revision = 5;

constexpr uint8_t k_address_space_system_io = 1;
constexpr uint8_t k_access_size_byte = 1;

// FADT Fixed Feature Flags (§5.2.9).
constexpr uint32_t k_fadt_wbinvd = 1u << 0;      // required of all ACPI 2.0+ systems
constexpr uint32_t k_fadt_proc_c1 = 1u << 2;     // HLT works on every CPU
constexpr uint32_t k_fadt_pwr_button = 1u << 4;  // no fixed-feature power button
constexpr uint32_t k_fadt_slp_button = 1u << 5;  // no fixed-feature sleep button
constexpr uint32_t k_fadt_reset_reg_sup = 1u << 10;
constexpr uint32_t k_fadt_hw_reduced_acpi = 1u << 20;

// IA-PC Boot Architecture Flags (§5.2.9.3).
constexpr uint16_t k_boot_legacy_devices = 1u << 0;  // user-visible ISA devices: COM1
constexpr uint16_t k_boot_8042 = 1u << 1;            // we emulate an i8042
constexpr uint16_t k_boot_vga_not_present = 1u << 2;
// Deliberately clear: bit 3 "MSI not supported" (virtio-PCI uses MSI-X) and bit 5 "CMOS RTC not
// present" (there is an RTC at 0x70; with the bit set Linux would not register rtc-cmos).

constexpr uint32_t k_madt_pcat_compat = 1u << 0;  // KVM's in-kernel irqchip has the dual 8259s
constexpr uint32_t k_madt_lapic_enabled = 1u << 0;
constexpr uint8_t k_madt_all_processors = 0xFF;
constexpr uint8_t k_madt_nmi_lint = 1;  // NMI arrives on LINT1 (the monitor programs LVT1 as NMI)

// ISA IRQs of legacy devices not (yet) named in ports.h.
constexpr uint8_t k_i8042_keyboard_irq = 1;
constexpr uint8_t k_rtc_irq = 8;
constexpr uint16_t k_i8042_command_port = 0x64;
// PCI configuration mechanism #1 (0xCF8 address, 0xCFC data).
constexpr uint16_t k_pci_config_port = 0xCF8;
constexpr uint8_t k_pci_config_port_count = 8;

// Tables are 8-byte aligned in the blob (the XSDT holds 64-bit pointers; alignment is not required
// by the spec, it only keeps every table at a tidy address).
constexpr size_t k_table_alignment = 8;

uint8_t checksum(const uint8_t* bytes, size_t length) {
    return static_cast<uint8_t>(-std::accumulate(bytes, bytes + length, 0u));
}

template <typename T>
void append(std::vector<uint8_t>& out, const T& value) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&value);
    out.insert(out.end(), bytes, bytes + sizeof(T));
}

TableHeader make_header(const char (&signature)[5], uint8_t revision) {
    TableHeader header{};
    std::memcpy(header.signature, signature, 4);
    header.revision = revision;
    std::memcpy(header.oem_id, k_oem_id, 6);
    std::memcpy(header.oem_table_id, k_oem_table_id, 8);
    header.oem_revision = k_oem_revision;
    std::memcpy(header.creator_id, k_creator_id, 4);
    header.creator_revision = k_creator_revision;
    return header;
}

// Sets the header's length and checksum once the whole table is in `table` (§5.2.6).
void seal(std::vector<uint8_t>& table) {
    uint32_t length = static_cast<uint32_t>(table.size());
    std::memcpy(table.data() + offsetof(TableHeader, length), &length, sizeof(length));
    table[offsetof(TableHeader, checksum)] = 0;
    table[offsetof(TableHeader, checksum)] = checksum(table.data(), table.size());
}

GenericAddress io_port_register(uint16_t port) {
    return GenericAddress{k_address_space_system_io, 8, 0, k_access_size_byte, port};
}

/// Appends tables to the blob at k_acpi_tables_address and tells where each one landed.
class TableBlob {
public:
    uint64_t add(const std::vector<uint8_t>& table) {
        m_bytes.resize((m_bytes.size() + k_table_alignment - 1) / k_table_alignment *
                       k_table_alignment);
        uint64_t address = k_acpi_tables_address + m_bytes.size();
        m_bytes.insert(m_bytes.end(), table.begin(), table.end());
        return address;
    }
    std::vector<uint8_t> take() { return std::move(m_bytes); }

private:
    std::vector<uint8_t> m_bytes;
};

// Name (_HID, EisaId (pnp_id)), Name (_UID, Zero), Name (_CRS, ResourceTemplate () { resources }).
// (Each TRY gets its own statement: GCC 12 does not clean up a half-built initializer list when a
// statement expression returns out of it.)
Result<aml::Bytes> pnp_device_body(std::string_view pnp_id, std::span<const aml::Bytes> resources) {
    aml::Bytes hid = TRY(aml::eisa_id(pnp_id));
    aml::Bytes hid_name = TRY(aml::name("_HID", hid));
    aml::Bytes uid_name = TRY(aml::name("_UID", aml::integer(0)));
    aml::Bytes crs = TRY(aml::resource_template(resources));
    aml::Bytes crs_name = TRY(aml::name("_CRS", crs));
    return aml::concat({hid_name, uid_name, crs_name});
}

// A legacy ISA device: its PNP id, fixed I/O ranges and ISA IRQ.
Result<aml::Bytes> isa_device(std::string_view name, std::string_view pnp_id,
                              std::vector<aml::Bytes> resources, uint8_t irq) {
    resources.push_back(TRY(aml::irq_no_flags(irq)));
    aml::Bytes body = TRY(pnp_device_body(pnp_id, resources));
    return aml::device(name, body);
}

// The PCI host bridge. Once ACPI is in use, Linux x86 no longer probes PCI bus 0 by itself
// (arch/x86/pci/legacy.c pci_subsys_init(): x86_init.pci.init = pci_acpi_init() succeeds, so
// pci_legacy_init() is never called): it scans only the root buses the DSDT declares. The windows
// are what the guest may assign BARs from: all I/O ports but the config mechanism #1 registers, and
// the 32-bit PCI hole below the I/O APIC. Devices are expected to use MSI(-X), so there is no _PRT
// (INTx routing) yet.
Result<aml::Bytes> pci_host_bridge() {
    std::vector<aml::Bytes> resources;
    resources.push_back(TRY(aml::word_bus_number(0x00, 0xFF)));
    resources.push_back(aml::io_port(k_pci_config_port, k_pci_config_port_count));
    resources.push_back(TRY(aml::word_io(0x0000, k_pci_config_port - 1)));
    resources.push_back(TRY(aml::word_io(k_pci_config_port + k_pci_config_port_count, 0xFFFF)));
    resources.push_back(TRY(aml::dword_memory(static_cast<uint32_t>(k_pci_hole_start),
                                              static_cast<uint32_t>(k_ioapic_address - 1))));
    aml::Bytes body = TRY(pnp_device_body("PNP0A03", resources));
    return aml::device("PCI0", body);
}

Result<aml::Bytes> dsdt_aml() {
    // \_S5: SLP_TYPa = SLP_TYPb = 5. In hardware-reduced mode Linux powers off by writing
    // ((SLP_TYPa << 2) & 0x1C) | SLP_EN (0x20) to SLEEP_CONTROL_REG (ACPICA's
    // acpi_hw_extended_sleep()): 0x34 on port 0x600. The two trailing elements are reserved
    // (§7.4.2). Linux also insists on SLEEP_STATUS_REG being present before it offers S5 at all
    // (acpi_sleep_state_supported()), hence the FADT names port 0x601 too.
    std::vector<aml::Bytes> s5{aml::integer(k_acpi_s5_sleep_type),
                               aml::integer(k_acpi_s5_sleep_type), aml::integer(0),
                               aml::integer(0)};
    aml::Bytes s5_package = TRY(aml::package(s5));
    aml::Bytes sleep_state = TRY(aml::name("_S5_", s5_package));

    aml::Bytes pci = TRY(pci_host_bridge());
    aml::Bytes com1 =
        TRY(isa_device("COM1", "PNP0501", {aml::io_port(k_com1_port, k_com1_port_count)},
                       static_cast<uint8_t>(k_com1_irq)));
    aml::Bytes rtc =
        TRY(isa_device("RTC", "PNP0B00", {aml::io_port(k_rtc_port, k_rtc_port_count)}, k_rtc_irq));
    aml::Bytes keyboard = TRY(isa_device(
        "KBD", "PNP0303", {aml::io_port(k_i8042_port, 1), aml::io_port(k_i8042_command_port, 1)},
        k_i8042_keyboard_irq));
    aml::Bytes system_bus = TRY(aml::scope("\\_SB", aml::concat({pci, com1, rtc, keyboard})));
    return aml::concat({sleep_state, system_bus});
}

std::vector<uint8_t> fadt_table(uint64_t dsdt_address) {
    Fadt fadt{};
    fadt.header = make_header("FACP", k_fadt_revision);
    fadt.flags = k_fadt_wbinvd | k_fadt_proc_c1 | k_fadt_pwr_button | k_fadt_slp_button |
                 k_fadt_reset_reg_sup | k_fadt_hw_reduced_acpi;
    fadt.iapc_boot_arch = k_boot_legacy_devices | k_boot_8042 | k_boot_vga_not_present;
    // Reset: the chipset reset control register, written with "full reset" (0x06).
    fadt.reset_reg = io_port_register(k_reset_control_port);
    fadt.reset_value = k_reset_control_value;
    fadt.fadt_minor_version = k_fadt_minor_version;
    // Only the 64-bit pointer: when X_DSDT is set the 32-bit DSDT field must be ignored (§5.2.9),
    // and leaving it zero avoids ACPICA's "32/64X address mismatch" check.
    fadt.x_dsdt = dsdt_address;
    fadt.sleep_control_reg = io_port_register(k_acpi_sleep_control_port);
    fadt.sleep_status_reg = io_port_register(k_acpi_sleep_status_port);
    std::memcpy(fadt.hypervisor_vendor_identity, k_hypervisor_vendor, 8);
    // SCI_INT, PM blocks, GPE blocks and FIRMWARE_CTRL stay zero: a hardware-reduced platform has
    // none of them and no FACS (§5.2.9, §5.2.10).

    std::vector<uint8_t> table;
    append(table, fadt);
    seal(table);
    return table;
}

std::vector<uint8_t> madt_table(uint32_t cpu_count) {
    Madt madt{};
    madt.header = make_header("APIC", k_madt_revision);
    madt.local_apic_address = static_cast<uint32_t>(k_lapic_address);
    madt.flags = k_madt_pcat_compat;
    std::vector<uint8_t> table;
    append(table, madt);
    for (uint32_t i = 0; i < cpu_count; ++i) {
        auto id = static_cast<uint8_t>(i);  // KVM gives vCPU i LAPIC id i; the UID is the CPU index
        append(table, MadtLocalApic{0, sizeof(MadtLocalApic), id, id, k_madt_lapic_enabled});
    }
    append(table, MadtIoApic{1, sizeof(MadtIoApic), static_cast<uint8_t>(cpu_count), 0,
                             static_cast<uint32_t>(k_ioapic_address), 0});
    append(table, MadtLocalApicNmi{4, sizeof(MadtLocalApicNmi), k_madt_all_processors, 0,
                                   k_madt_nmi_lint});
    // No Interrupt Source Override entries. KVM's default GSI routing sends ISA IRQ n to I/O APIC
    // pin n (GSI n) for all 16 ISA IRQs, the PIT's IRQ 0 included, which is exactly what the ACPI
    // identity default assumes (§5.2.12.5). An override IRQ0 -> GSI 2, as PC firmware and QEMU
    // (which reroutes the PIT to pin 2) publish, would be wrong here: Linux would program pin 2 for
    // the timer while KVM raises pin 0.
    // Why IRQ 0 needs no override at all (arch/x86/kernel/acpi/boot.c):
    //  - in hardware-reduced mode (this FADT) Linux never uses IRQ 0: timer_init is a no-op and
    //    nr_legacy_irqs() is 0, so there is no IRQ 0 to route;
    //  - without HW_REDUCED_ACPI, mp_config_acpi_legacy_irqs() fills an identity entry IRQ n -> GSI
    //  n
    //    for every ISA IRQ without an override, so the timer would land on pin 0, where KVM's PIT
    //    is, and check_timer() succeeds on its first try.
    seal(table);
    return table;
}

std::vector<uint8_t> xsdt_table(std::initializer_list<uint64_t> entries) {
    std::vector<uint8_t> table;
    append(table, make_header("XSDT", k_xsdt_revision));
    for (uint64_t address : entries)
        append(table, address);
    seal(table);
    return table;
}

std::vector<uint8_t> rsdp_bytes(uint64_t xsdt_address) {
    Rsdp rsdp{};
    std::memcpy(rsdp.signature, "RSD PTR ", 8);
    std::memcpy(rsdp.oem_id, k_oem_id, 6);
    rsdp.revision = k_rsdp_revision;
    rsdp.rsdt_address = 0;  // XSDT only: revision 2 OSPMs (Linux) use XSDT_ADDRESS
    rsdp.length = sizeof(Rsdp);
    rsdp.xsdt_address = xsdt_address;
    std::vector<uint8_t> out;
    append(out, rsdp);
    out[offsetof(Rsdp, checksum)] = checksum(out.data(), 20);
    out[offsetof(Rsdp, extended_checksum)] = checksum(out.data(), out.size());
    return out;
}

}  // namespace

Result<AcpiTables> build_acpi_tables(uint32_t cpu_count) {
    TRY_VOID(check_cpu_count(cpu_count));

    std::vector<uint8_t> dsdt;
    append(dsdt, make_header("DSDT", k_dsdt_revision));
    aml::Bytes aml = TRY_CONTEXT(dsdt_aml(), "encoding the DSDT");
    dsdt.insert(dsdt.end(), aml.begin(), aml.end());
    seal(dsdt);

    TableBlob blob;
    uint64_t dsdt_address = blob.add(dsdt);
    uint64_t fadt_address = blob.add(fadt_table(dsdt_address));
    uint64_t madt_address = blob.add(madt_table(cpu_count));
    uint64_t xsdt_address = blob.add(xsdt_table({fadt_address, madt_address}));

    AcpiTables tables{rsdp_bytes(xsdt_address), blob.take()};
    if (k_acpi_rsdp_address + tables.rsdp.size() > k_acpi_tables_address)
        return fail("the ACPI RSDP overlaps the ACPI tables");
    if (k_acpi_tables_address + tables.tables.size() > k_bios_area_end)
        return fail(
            fmt::format("ACPI tables of {} bytes for {} CPUs do not fit between 0x{:x} and 0x{:x}",
                        tables.tables.size(), cpu_count, k_acpi_tables_address, k_bios_area_end));
    return tables;
}

Result<void> write_acpi_tables(const GuestMemory& memory, uint32_t cpu_count) {
    AcpiTables tables = TRY_CONTEXT(build_acpi_tables(cpu_count), "building the ACPI tables");
    if (auto written = memory.write(k_acpi_rsdp_address, tables.rsdp); !written)
        return fail(written.error().with_context("writing the ACPI RSDP"));
    if (auto written = memory.write(k_acpi_tables_address, tables.tables); !written)
        return fail(written.error().with_context("writing the ACPI tables"));
    return {};
}

}  // namespace corral::vmm::x86
