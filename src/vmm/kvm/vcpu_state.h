#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"
#include "vmm/kvm/variable_size_ioctls.h"

namespace corral::vmm::snapshot {
class StateWriter;
class StateReader;
}  // namespace corral::vmm::snapshot

namespace corral::vmm::kvm {

class System;
class Vcpu;
class Vm;

/// Everything KVM holds about one vCPU, as KVM's own structs (x86-64 KVM ABI, stable across
/// kernels): general, special and debug registers, FPU/XSAVE, XCRs, the MSRs KVM lists (TSC
/// and kvmclock ones included), the local APIC, pending events, the MP state and the CPUID
/// table the guest sees. Section "VCPU", version 1.
struct VcpuState {
    uint32_t id = 0;
    kvm_regs regs{};
    kvm_sregs sregs{};
    kvm_fpu fpu{};
    std::optional<XsaveArea> xsave;  // when KVM has KVM_CAP_XSAVE (then it supersedes fpu)
    std::optional<kvm_xcrs> xcrs;    // when KVM has KVM_CAP_XCRS
    std::vector<kvm_msr_entry> msrs;
    kvm_lapic_state lapic{};
    kvm_vcpu_events events{};
    kvm_mp_state mp_state{};
    kvm_debugregs debug_regs{};
    std::vector<kvm_cpuid_entry2> cpuid;  // as given to KVM_SET_CPUID2
    uint32_t tsc_khz = 0;

    void encode(snapshot::StateWriter& writer) const;
    static VcpuState decode(snapshot::StateReader& reader);
};

/// The MSRs to save on this host: KVM_GET_MSR_INDEX_LIST, minus those KVM_GET_MSRS refuses for
/// `vcpu` (the list names every MSR KVM knows; some exist only with features this CPU lacks).
Result<std::vector<uint32_t>> saveable_msrs(const System& system, const Vcpu& vcpu);

/// Reads a vCPU's state. The vCPU must not be running: call Vcpu::complete_pending_io() first
/// if it stopped in an I/O exit.
Result<VcpuState> save_vcpu(const System& system, const Vcpu& vcpu, std::span<const uint32_t> msr_indices);
/// Writes a saved state into a new vCPU of a VM restored with restore_vm(), in the order KVM
/// needs (CPUID first; LAPIC before MSRs, for TSC_DEADLINE; events last).
Result<void> restore_vcpu(const System& system, const Vcpu& vcpu, const VcpuState& state);

/// The VM-wide state of KVM's in-kernel devices: both PICs, the IOAPIC, the PIT and the KVM
/// clock. Section "KVMV", version 1.
struct VmState {
    kvm_irqchip pic_master{};
    kvm_irqchip pic_slave{};
    kvm_irqchip ioapic{};
    kvm_pit_state2 pit{};
    kvm_clock_data clock{};

    void encode(snapshot::StateWriter& writer) const;
    static VmState decode(snapshot::StateReader& reader);
};

/// Reads the in-kernel irqchip, PIT and clock of a VM created with them (vCPUs paused), the
/// clock with the host's wall-clock time of that instant (KVM_CLOCK_REALTIME and `realtime`).
Result<VmState> save_vm(const Vm& vm);
/// Writes them into a new VM that has its irqchip and PIT, before its vCPUs are restored.
/// The KVM clock continues from the saved value stepped by the wall-clock time since it was
/// saved (restored_clock()), so the guest's clocks show the time that passed.
Result<void> restore_vm(const Vm& vm, const VmState& state);

/// What KVM_SET_CLOCK gets for a clock saved as `saved` when the host's CLOCK_REALTIME is
/// `now_ns`: the saved value plus the time since the saved host time, when the saved clock has
/// one and that step is forward and under ten years (otherwise the saved value).
kvm_clock_data restored_clock(const kvm_clock_data& saved, uint64_t now_ns);
/// The host's CLOCK_REALTIME in nanoseconds.
uint64_t realtime_now_ns();

}  // namespace corral::vmm::kvm
