#pragma once

#include <linux/kvm.h>

#include <span>
#include <string>
#include <vector>

namespace corral::vmm::snapshot {

/// The CPU feature bits a snapshot's guest saw (`saved`, one vCPU's CPUID) that this host would
/// not give it (`available`: the CPUID a new guest gets here), each named like
/// "CPUID 0x7.0 EBX bit 5". Empty when the guest can run here. Compares the feature leaves
/// (1, 7.0, 0xD.1, 0x80000001, KVM's 0x40000001); bits the CPU changes at run time (OSXSAVE,
/// OSPKE, the APIC-enabled bit) are left out.
std::vector<std::string> missing_cpu_features(std::span<const kvm_cpuid_entry2> saved,
                                              std::span<const kvm_cpuid_entry2> available);

}  // namespace corral::vmm::snapshot
