#include "vmm/arch/x86_64/long_mode.h"

#include <array>

#include "vmm/arch/x86_64/layout.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm::x86 {
namespace {

constexpr uint64_t k_cr0_pe = 1ull << 0;
constexpr uint64_t k_cr0_mp = 1ull << 1;
constexpr uint64_t k_cr0_et = 1ull << 4;
constexpr uint64_t k_cr0_ne = 1ull << 5;
constexpr uint64_t k_cr0_pg = 1ull << 31;
constexpr uint64_t k_cr4_pae = 1ull << 5;
constexpr uint64_t k_cr4_osfxsr = 1ull << 9;
constexpr uint64_t k_cr4_osxmmexcpt = 1ull << 10;
constexpr uint64_t k_efer_lme = 1ull << 8;
constexpr uint64_t k_efer_lma = 1ull << 10;

constexpr uint64_t k_page_present = 1ull << 0;
constexpr uint64_t k_page_writable = 1ull << 1;
constexpr uint64_t k_page_huge = 1ull << 7;

// GDT entries (Intel SDM Vol. 3 §3.4.5): null, 64-bit code, flat data, 32-bit TSS.
constexpr std::array<uint64_t, 4> k_gdt = {
    0x0000000000000000,
    0x00AF9B000000FFFF,  // code: present, DPL 0, execute/read, accessed, L=1, G=1
    0x00CF93000000FFFF,  // data: present, DPL 0, read/write, accessed, D/B=1, G=1
    0x008F8B000000FFFF,  // TSS: present, busy 32-bit TSS (KVM wants a usable TR in long mode)
};

/// Decodes a GDT entry into the form KVM's segment registers take.
kvm_segment segment_from_gdt(uint64_t entry, uint16_t selector) {
    kvm_segment segment{};
    segment.base = static_cast<uint64_t>(((entry >> 16) & 0xFFFFFF) | ((entry >> 32) & 0xFF000000));
    uint32_t limit = static_cast<uint32_t>((entry & 0xFFFF) | ((entry >> 32) & 0xF0000));
    segment.g = (entry >> 55) & 1;
    segment.limit = segment.g ? (limit << 12) | 0xFFF : limit;
    segment.selector = selector;
    segment.type = (entry >> 40) & 0xF;
    segment.s = (entry >> 44) & 1;
    segment.dpl = (entry >> 45) & 3;
    segment.present = (entry >> 47) & 1;
    segment.avl = (entry >> 52) & 1;
    segment.l = (entry >> 53) & 1;
    segment.db = (entry >> 54) & 1;
    segment.unusable = segment.present ? 0 : 1;
    return segment;
}

}  // namespace

Result<void> write_boot_gdt(const GuestMemory& memory) {
    for (size_t i = 0; i < k_gdt.size(); ++i)
        TRY_VOID(memory.write_object(k_gdt_address + i * sizeof(uint64_t), k_gdt[i]));
    TRY_VOID(memory.write_object<uint64_t>(k_idt_address, 0));
    return {};
}

Result<void> write_identity_page_tables(const GuestMemory& memory) {
    TRY_VOID(memory.write_object(k_pml4_address, k_pdpt_address | k_page_present | k_page_writable));
    for (uint64_t pd = 0; pd < k_pd_count; ++pd) {
        uint64_t pd_address = k_pd_address + pd * 0x1000;
        TRY_VOID(memory.write_object(k_pdpt_address + pd * 8,
                                     pd_address | k_page_present | k_page_writable));
        for (uint64_t entry = 0; entry < 512; ++entry) {
            uint64_t physical = (pd * 512 + entry) * 2 * MiB;
            TRY_VOID(memory.write_object(pd_address + entry * 8,
                                         physical | k_page_present | k_page_writable | k_page_huge));
        }
    }
    return {};
}

kvm_sregs long_mode_sregs(const kvm_sregs& reset_state) {
    kvm_sregs sregs = reset_state;
    sregs.gdt.base = k_gdt_address;
    sregs.gdt.limit = static_cast<uint16_t>(k_gdt.size() * sizeof(uint64_t) - 1);
    sregs.idt.base = k_idt_address;
    sregs.idt.limit = 0;

    kvm_segment code = segment_from_gdt(k_gdt[1], k_code64_selector);
    kvm_segment data = segment_from_gdt(k_gdt[2], k_data_selector);
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    sregs.tr = segment_from_gdt(k_gdt[3], k_tss_selector);

    sregs.cr3 = k_pml4_address;
    sregs.cr4 |= k_cr4_pae | k_cr4_osfxsr | k_cr4_osxmmexcpt;
    sregs.cr0 |= k_cr0_pe | k_cr0_mp | k_cr0_et | k_cr0_ne | k_cr0_pg;
    sregs.efer |= k_efer_lme | k_efer_lma;
    return sregs;
}

kvm_regs long_mode_regs(uint64_t entry, uint64_t boot_params_address) {
    kvm_regs regs{};
    regs.rflags = 0x2;  // bit 1 is reserved and always set; IF clear
    regs.rip = entry;
    regs.rsi = boot_params_address;
    // A stack below the boot params page, for guests that use one before setting their own.
    regs.rsp = k_boot_params_address - 0x10;
    regs.rbp = regs.rsp;
    return regs;
}

kvm_fpu boot_fpu() {
    kvm_fpu fpu{};
    fpu.fcw = 0x37F;     // x87 control word after FNINIT
    fpu.mxcsr = 0x1F80;  // all SSE exceptions masked
    return fpu;
}

}  // namespace corral::vmm::x86
