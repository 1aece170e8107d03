#include "vmm/arch/x86_64/msrs.h"

#include <cstdint>

namespace corral::vmm::x86 {
namespace {

constexpr uint32_t k_msr_ia32_sysenter_cs = 0x174;
constexpr uint32_t k_msr_ia32_sysenter_esp = 0x175;
constexpr uint32_t k_msr_ia32_sysenter_eip = 0x176;
constexpr uint32_t k_msr_ia32_misc_enable = 0x1A0;
constexpr uint32_t k_msr_mtrr_def_type = 0x2FF;
constexpr uint32_t k_msr_star = 0xC0000081;
constexpr uint32_t k_msr_lstar = 0xC0000082;
constexpr uint32_t k_msr_cstar = 0xC0000083;
constexpr uint32_t k_msr_syscall_mask = 0xC0000084;
constexpr uint32_t k_msr_kernel_gs_base = 0xC0000102;

constexpr uint64_t k_misc_enable_fast_string = 1;
constexpr uint64_t k_mtrr_enable = 1ull << 11;
constexpr uint64_t k_mtrr_type_write_back = 6;

kvm_msr_entry msr(uint32_t index, uint64_t value) {
    kvm_msr_entry entry{};
    entry.index = index;
    entry.data = value;
    return entry;
}

}  // namespace

std::vector<kvm_msr_entry> boot_msrs() {
    return {
        msr(k_msr_ia32_sysenter_cs, 0),
        msr(k_msr_ia32_sysenter_esp, 0),
        msr(k_msr_ia32_sysenter_eip, 0),
        msr(k_msr_star, 0),
        msr(k_msr_cstar, 0),
        msr(k_msr_kernel_gs_base, 0),
        msr(k_msr_syscall_mask, 0),
        msr(k_msr_lstar, 0),
        msr(k_msr_ia32_misc_enable, k_misc_enable_fast_string),
        msr(k_msr_mtrr_def_type, k_mtrr_enable | k_mtrr_type_write_back),
    };
}

}  // namespace corral::vmm::x86
