#pragma once

#include <linux/kvm.h>

#include <vector>

/// Model-specific registers set on every vCPU before it runs.
namespace corral::vmm::x86 {

/// The MSR values a vCPU starts with: syscall MSRs cleared, fast strings on, write-back MTRR
/// default type (Linux disables caching of memory the MTRRs leave uncached), TSC at 0.
std::vector<kvm_msr_entry> boot_msrs();

}  // namespace corral::vmm::x86
