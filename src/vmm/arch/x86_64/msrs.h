#pragma once

#include <linux/kvm.h>

#include <vector>

/// Model-specific registers set on every vCPU before it runs.
namespace corral::vmm::x86 {

/// The MSR values a vCPU starts with: syscall MSRs cleared, fast strings on, write-back MTRR
/// default type (Linux disables caching of memory the MTRRs leave uncached). The TSC is left to
/// KVM, which keeps the vCPUs' TSCs in step; writing it per vCPU at slightly different times
/// makes Linux mark the TSC unstable ("TSCs unsynchronized").
std::vector<kvm_msr_entry> boot_msrs();

}  // namespace corral::vmm::x86
