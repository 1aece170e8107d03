#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <vector>

#include "base/mapping.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "vmm/kvm/variable_size_ioctls.h"

namespace corral::vmm::kvm {

/// One virtual CPU (the fd KVM_CREATE_VCPU returns) and its shared kvm_run area.
class Vcpu {
public:
    Vcpu(UniqueFd fd, Mapping run, uint32_t id)
        : m_fd(std::move(fd)), m_run(std::move(run)), m_id(id) {}

    uint32_t id() const { return m_id; }
    int fd() const { return m_fd.get(); }
    /// The kvm_run area: exit reason and exit data after run().
    kvm_run* run_area() const { return reinterpret_cast<kvm_run*>(m_run.data()); }

    /// KVM_RUN. Fails with EINTR when a signal interrupted it (then check why and call again).
    Result<void> run() const;

    Result<kvm_regs> regs() const;
    Result<void> set_regs(const kvm_regs& regs) const;
    Result<kvm_sregs> sregs() const;
    Result<void> set_sregs(const kvm_sregs& sregs) const;
    Result<kvm_fpu> fpu() const;
    Result<void> set_fpu(const kvm_fpu& fpu) const;
    /// KVM_SET_MSRS with (index, value) pairs; fails unless every MSR was set.
    Result<void> set_msrs(std::span<const kvm_msr_entry> entries) const;
    /// KVM_GET_MSRS for the given indices, in order.
    Result<std::vector<kvm_msr_entry>> msrs(std::span<const uint32_t> indices) const;
    Result<void> set_cpuid(std::span<const kvm_cpuid_entry2> entries) const;
    Result<kvm_lapic_state> lapic() const;
    Result<void> set_lapic(const kvm_lapic_state& state) const;
    Result<kvm_mp_state> mp_state() const;
    Result<void> set_mp_state(const kvm_mp_state& state) const;
    /// KVM_GET_XSAVE / KVM_SET_XSAVE (the legacy 4 KiB area: x87, SSE, AVX and friends).
    Result<XsaveArea> xsave() const;
    Result<void> set_xsave(const XsaveArea& state) const;
    Result<kvm_xcrs> xcrs() const;
    Result<void> set_xcrs(const kvm_xcrs& xcrs) const;
    /// KVM_GET_VCPU_EVENTS / KVM_SET_VCPU_EVENTS: pending exceptions, interrupts, NMIs, SMIs.
    Result<kvm_vcpu_events> vcpu_events() const;
    Result<void> set_vcpu_events(const kvm_vcpu_events& events) const;
    Result<kvm_debugregs> debug_regs() const;
    Result<void> set_debug_regs(const kvm_debugregs& regs) const;
    /// KVM_GET_CPUID2: KVM's CPUID table for this vCPU. Not always the table set_cpuid() gave
    /// (PVM's KVM answers with more bits than it was given); see given_cpuid().
    Result<std::vector<kvm_cpuid_entry2>> cpuid() const;
    /// The table the last successful set_cpuid() gave KVM (empty before): what a snapshot
    /// records as the CPUID the guest was given, and what a restore gives again.
    const std::vector<kvm_cpuid_entry2>& given_cpuid() const { return m_given_cpuid; }
    /// KVM_GET_TSC_KHZ: the guest's TSC frequency.
    Result<uint32_t> tsc_khz() const;
    /// KVM_RUN with immediate_exit set: finishes an I/O or MMIO exit the vCPU is in the middle
    /// of (KVM completes it on the next entry; api.rst, "immediate_exit"), so that the state
    /// read afterwards is consistent, without running guest code. Call from a thread that is
    /// not in KVM_RUN for this vCPU (its own, or any while it is parked).
    Result<void> complete_pending_io() const;

private:
    UniqueFd m_fd;
    Mapping m_run;
    uint32_t m_id;
    // Recorded by set_cpuid() (const, as every ioctl wrapper: the vCPU is KVM's state).
    mutable std::vector<kvm_cpuid_entry2> m_given_cpuid;
};

}  // namespace corral::vmm::kvm
