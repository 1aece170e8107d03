#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <vector>

namespace corral::vmm::x86 {

/// The CPU vendor, as far as topology and cache leaves are concerned.
enum class CpuVendor { Intel, Amd, Other };

/// The vendor named by leaf 0 ("GenuineIntel", "AuthenticAMD"; Hygon's AMD-derived
/// "HygonGenuine" counts as Amd); Other when leaf 0 is missing or names someone else.
CpuVendor cpu_vendor(std::span<const kvm_cpuid_entry2> entries);

/// The CPUID table for vCPU `cpu_index` of `cpu_count`, made from KVM_GET_SUPPORTED_CPUID's
/// `supported`: APIC ids and a topology of `cpu_count` single-threaded cores in one package
/// (leaves 1, 4, 0xB, 0x1F and AMD's 0x80000001/8/1D/1E), the hypervisor bit, no host power
/// management (leaf 6), and KVM's paravirtual leaves 0x40000000/0x40000001. Pure: no ioctls.
std::vector<kvm_cpuid_entry2> shape_cpuid(std::span<const kvm_cpuid_entry2> supported,
                                          uint32_t cpu_index, uint32_t cpu_count);

/// Whether leaf 0x40000001 offers kvm-clock (KVM_FEATURE_CLOCKSOURCE2). Without it a Debian cloud
/// kernel hangs after "tsc: Marking TSC unstable" (DESIGN.md), so the monitor should refuse to
/// boot.
bool has_kvm_clock(std::span<const kvm_cpuid_entry2> entries);

}  // namespace corral::vmm::x86
