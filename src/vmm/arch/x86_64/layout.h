#pragma once

#include <cstdint>

/// The guest-physical memory map of a Corral x86-64 VM. Everything the monitor places in guest
/// memory before boot has its address here, so that no two builders can overlap.
namespace corral::vmm::x86 {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;

// Low memory, below the EBDA.
constexpr uint64_t k_gdt_address = 0x500;           // 4 descriptors
constexpr uint64_t k_idt_address = 0x520;           // empty IDT for the 64-bit entry
constexpr uint64_t k_boot_params_address = 0x7000;  // the "zero page"
constexpr uint64_t k_pml4_address = 0x9000;         // identity page tables: PML4,
constexpr uint64_t k_pdpt_address = 0xA000;         // one PDPT,
constexpr uint64_t k_pd_address = 0xB000;           // and four PDs (2 MiB pages) = first 4 GiB
constexpr uint64_t k_pd_count = 4;
constexpr uint64_t k_cmdline_address = 0x20000;
constexpr uint64_t k_cmdline_max_size = 0x10000;    // the kernel's own limit is smaller

// The EBDA and BIOS area: reserved in the e820 map.
constexpr uint64_t k_ebda_start = 0x9FC00;
constexpr uint64_t k_mptable_address = k_ebda_start;  // Linux scans the first KiB of the EBDA
constexpr uint64_t k_bios_area_start = 0xE0000;
constexpr uint64_t k_acpi_rsdp_address = 0xE0000;     // Linux scans 0xE0000-0xFFFFF for "RSD PTR "
constexpr uint64_t k_acpi_tables_address = 0xE0100;
constexpr uint64_t k_reset_vector_address = 0xFFFF0;  // F000:FFF0, where a BIOS would be
constexpr uint64_t k_bios_area_end = 0x100000;

// The kernel and the start of ordinary RAM.
constexpr uint64_t k_high_ram_start = 0x100000;  // 1 MiB
constexpr uint64_t k_kernel_load_address = 0x100000;

// The PCI hole: MMIO space below 4 GiB; RAM beyond it continues at 4 GiB.
constexpr uint64_t k_pci_hole_start = 3 * GiB;
constexpr uint64_t k_high_memory_start = 4 * GiB;

// Local and I/O APIC (fixed by the architecture).
constexpr uint64_t k_ioapic_address = 0xFEC00000;
constexpr uint64_t k_lapic_address = 0xFEE00000;

// KVM on Intel needs three pages for a TSS and one for the identity map, out of guest RAM's way.
constexpr uint64_t k_kvm_tss_address = 0xFFFBD000;
constexpr uint64_t k_kvm_identity_map_address = 0xFFFBC000;

}  // namespace corral::vmm::x86
