#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <vector>

#include "base/mapping.h"
#include "base/result.h"
#include "base/unique_fd.h"

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

private:
    UniqueFd m_fd;
    Mapping m_run;
    uint32_t m_id;
};

}  // namespace corral::vmm::kvm
