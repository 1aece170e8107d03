#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"

namespace corral::vmm {
class GuestMemory;
}

namespace corral::vmm::x86 {

/// The ACPI tables of a VM, as bytes ready to copy into guest memory: the RSDP, which goes at
/// k_acpi_rsdp_address, and one blob (DSDT, FADT, MADT, XSDT) that goes at k_acpi_tables_address.
/// Every pointer inside is a guest-physical address computed from those two addresses.
struct AcpiTables {
    std::vector<uint8_t> rsdp;
    std::vector<uint8_t> tables;
};

/// Builds hardware-reduced ACPI 6.5 tables for `cpu_count` CPUs (1..254): RSDP rev 2 -> XSDT ->
/// FADT rev 6 (-> DSDT with \_S5 and the legacy devices) and MADT (one LAPIC per CPU, one I/O
/// APIC). Fails when cpu_count is out of range or the tables would not fit below 1 MiB.
Result<AcpiTables> build_acpi_tables(uint32_t cpu_count);

/// Builds the tables and copies them to k_acpi_rsdp_address and k_acpi_tables_address.
Result<void> write_acpi_tables(const GuestMemory& memory, uint32_t cpu_count);

}  // namespace corral::vmm::x86
