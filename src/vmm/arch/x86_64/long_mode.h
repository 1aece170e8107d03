#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "base/result.h"

namespace corral::vmm {
class GuestMemory;
}

/// The CPU state for entering a kernel in 64-bit long mode (Linux boot protocol §"64-bit Boot
/// Protocol"): flat segments from a GDT, identity paging, interrupts off.
namespace corral::vmm::x86 {

constexpr uint16_t k_code64_selector = 0x08;
constexpr uint16_t k_data_selector = 0x10;
constexpr uint16_t k_tss_selector = 0x18;

/// Writes the boot GDT at k_gdt_address and an empty IDT descriptor area at k_idt_address.
Result<void> write_boot_gdt(const GuestMemory& memory);
/// Writes identity page tables for the first 4 GiB (2 MiB pages) at k_pml4_address.
Result<void> write_identity_page_tables(const GuestMemory& memory);
/// Turns the vCPU's reset-state special registers into long-mode state using the tables above.
kvm_sregs long_mode_sregs(const kvm_sregs& reset_state);
/// General registers at the 64-bit entry: RIP = entry, RSI = boot_params, RFLAGS = 0x2.
kvm_regs long_mode_regs(uint64_t entry, uint64_t boot_params_address);
/// x87 and SSE control words as after FNINIT / at reset (Linux expects sane MXCSR).
kvm_fpu boot_fpu();

}  // namespace corral::vmm::x86
