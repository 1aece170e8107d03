#include "vmm/kvm/vcpu_state.h"

#include <cstring>
#include <ctime>

#include <fmt/format.h>

#include "vmm/kvm/system.h"
#include "vmm/kvm/vcpu.h"
#include "vmm/kvm/vm.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm::kvm {

using snapshot::tag;

namespace {

// KVM's structs are written as their bytes, prefixed by their size; a reader of another size
// (another architecture or ABI) refuses them instead of misreading.
template <typename T>
void write_struct(snapshot::StateWriter& w, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    w.bytes(std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
}

template <typename T>
T read_struct(snapshot::StateReader& r, const char* name) {
    static_assert(std::is_trivially_copyable_v<T>);
    T value{};
    uint32_t size = r.u32();
    if (!r.ok()) return value;
    if (size != sizeof(T)) {
        r.fail(fmt::format("{} is {} bytes; this build's is {}", name, size, sizeof(T)));
        return value;
    }
    r.fixed_bytes(std::span(reinterpret_cast<uint8_t*>(&value), sizeof(T)));
    return value;
}

template <typename T>
void write_array(snapshot::StateWriter& w, const std::vector<T>& values) {
    w.u32(static_cast<uint32_t>(values.size()));
    for (const T& value : values) write_struct(w, value);
}

template <typename T>
std::vector<T> read_array(snapshot::StateReader& r, size_t max_count, const char* name) {
    std::vector<T> values;
    uint32_t count = r.u32();
    if (count > max_count) {
        r.fail(fmt::format("{} entries of {}; at most {} allowed", count, name, max_count));
        return values;
    }
    for (uint32_t i = 0; i < count && r.ok(); ++i) values.push_back(read_struct<T>(r, name));
    return values;
}

// Bounds for hostile files: KVM's own limits (KVM_MAX_CPUID_ENTRIES; MSR lists are ~100).
constexpr size_t k_max_cpuid_entries = 256;
constexpr size_t k_max_msrs = 1024;

}  // namespace

void VcpuState::encode(snapshot::StateWriter& writer) const {
    writer.section(tag("VCPU"), 1, [&](snapshot::StateWriter& w) {
        w.u32(id);
        write_struct(w, regs);
        write_struct(w, sregs);
        write_struct(w, fpu);
        w.boolean(xsave.has_value());
        if (xsave) write_struct(w, *xsave);
        w.boolean(xcrs.has_value());
        if (xcrs) write_struct(w, *xcrs);
        write_array(w, msrs);
        write_struct(w, lapic);
        write_struct(w, events);
        write_struct(w, mp_state);
        write_struct(w, debug_regs);
        write_array(w, cpuid);
        w.u32(tsc_khz);
    });
}

VcpuState VcpuState::decode(snapshot::StateReader& reader) {
    VcpuState state;
    reader.section(tag("VCPU"), 1, [&](snapshot::StateReader& r, uint16_t) {
        state.id = r.u32();
        state.regs = read_struct<kvm_regs>(r, "kvm_regs");
        state.sregs = read_struct<kvm_sregs>(r, "kvm_sregs");
        state.fpu = read_struct<kvm_fpu>(r, "kvm_fpu");
        if (r.boolean()) state.xsave = read_struct<XsaveArea>(r, "XsaveArea");
        if (r.boolean()) state.xcrs = read_struct<kvm_xcrs>(r, "kvm_xcrs");
        state.msrs = read_array<kvm_msr_entry>(r, k_max_msrs, "MSRs");
        state.lapic = read_struct<kvm_lapic_state>(r, "kvm_lapic_state");
        state.events = read_struct<kvm_vcpu_events>(r, "kvm_vcpu_events");
        state.mp_state = read_struct<kvm_mp_state>(r, "kvm_mp_state");
        state.debug_regs = read_struct<kvm_debugregs>(r, "kvm_debugregs");
        state.cpuid = read_array<kvm_cpuid_entry2>(r, k_max_cpuid_entries, "CPUID");
        state.tsc_khz = r.u32();
    });
    return state;
}

Result<std::vector<uint32_t>> saveable_msrs(const System& system, const Vcpu& vcpu) {
    std::vector<uint32_t> candidates = TRY(system.msr_index_list());
    std::vector<uint32_t> saveable;
    // KVM_GET_MSRS stops at the first MSR it refuses and returns how many it read: keep those,
    // skip the refused one, and go on with the rest.
    size_t next = 0;
    while (next < candidates.size()) {
        auto read = TRY(vcpu.msrs(std::span(candidates).subspan(next)));
        for (const kvm_msr_entry& entry : read) saveable.push_back(entry.index);
        next += read.size() + 1;
    }
    return saveable;
}

Result<VcpuState> save_vcpu(const System& system, const Vcpu& vcpu, std::span<const uint32_t> msr_indices) {
    VcpuState state;
    state.id = vcpu.id();
    state.regs = TRY(vcpu.regs());
    state.sregs = TRY(vcpu.sregs());
    state.fpu = TRY(vcpu.fpu());
    if (system.check_extension(KVM_CAP_XSAVE) > 0) state.xsave = TRY(vcpu.xsave());
    if (system.check_extension(KVM_CAP_XCRS) > 0) state.xcrs = TRY(vcpu.xcrs());
    state.msrs = TRY(vcpu.msrs(msr_indices));
    if (state.msrs.size() != msr_indices.size())
        return fail(fmt::format("KVM_GET_MSRS read {} of {} MSRs (refused MSR 0x{:x})", state.msrs.size(),
                                msr_indices.size(), msr_indices[state.msrs.size()]));
    state.lapic = TRY(vcpu.lapic());
    state.events = TRY(vcpu.vcpu_events());
    state.mp_state = TRY(vcpu.mp_state());
    state.debug_regs = TRY(vcpu.debug_regs());
    // The table we gave KVM, as given (KVM_GET_CPUID2 may add bits, see Vcpu::cpuid()).
    state.cpuid = vcpu.given_cpuid().empty() ? TRY(vcpu.cpuid()) : vcpu.given_cpuid();
    state.tsc_khz = TRY(vcpu.tsc_khz());
    return state;
}

Result<void> restore_vcpu(const System& system, const Vcpu& vcpu, const VcpuState& state) {
    auto step = [&](Result<void> result, const char* what) -> Result<void> {
        if (!result) return fail(result.error().with_context(fmt::format("restoring vCPU {} {}", vcpu.id(), what)));
        return {};
    };
    if (state.id != vcpu.id())
        return fail(ErrorKind::Invalid, fmt::format("vCPU state of vCPU {} given to vCPU {}", state.id, vcpu.id()));
    TRY_VOID(step(vcpu.set_cpuid(state.cpuid), "CPUID"));
    TRY_VOID(step(vcpu.set_mp_state(state.mp_state), "MP state"));
    TRY_VOID(step(vcpu.set_regs(state.regs), "registers"));
    TRY_VOID(step(vcpu.set_sregs(state.sregs), "special registers"));
    if (state.xsave && system.check_extension(KVM_CAP_XSAVE) > 0)
        TRY_VOID(step(vcpu.set_xsave(*state.xsave), "XSAVE area"));
    else
        TRY_VOID(step(vcpu.set_fpu(state.fpu), "FPU"));
    if (state.xcrs) {
        if (system.check_extension(KVM_CAP_XCRS) <= 0)
            return fail(ErrorKind::Unavailable, "the snapshot has XCRs and this host's KVM cannot set them");
        TRY_VOID(step(vcpu.set_xcrs(*state.xcrs), "XCRs"));
    }
    TRY_VOID(step(vcpu.set_debug_regs(state.debug_regs), "debug registers"));
    TRY_VOID(step(vcpu.set_lapic(state.lapic), "local APIC"));
    TRY_VOID(step(vcpu.set_msrs(state.msrs), "MSRs"));
    TRY_VOID(step(vcpu.set_vcpu_events(state.events), "pending events"));
    return {};
}

void VmState::encode(snapshot::StateWriter& writer) const {
    writer.section(tag("KVMV"), 1, [&](snapshot::StateWriter& w) {
        write_struct(w, pic_master);
        write_struct(w, pic_slave);
        write_struct(w, ioapic);
        write_struct(w, pit);
        write_struct(w, clock);
    });
}

VmState VmState::decode(snapshot::StateReader& reader) {
    VmState state;
    reader.section(tag("KVMV"), 1, [&](snapshot::StateReader& r, uint16_t) {
        state.pic_master = read_struct<kvm_irqchip>(r, "PIC master");
        state.pic_slave = read_struct<kvm_irqchip>(r, "PIC slave");
        state.ioapic = read_struct<kvm_irqchip>(r, "IOAPIC");
        state.pit = read_struct<kvm_pit_state2>(r, "PIT");
        state.clock = read_struct<kvm_clock_data>(r, "KVM clock");
    });
    return state;
}

Result<VmState> save_vm(const Vm& vm) {
    VmState state;
    state.pic_master = TRY(vm.irqchip(KVM_IRQCHIP_PIC_MASTER));
    state.pic_slave = TRY(vm.irqchip(KVM_IRQCHIP_PIC_SLAVE));
    state.ioapic = TRY(vm.irqchip(KVM_IRQCHIP_IOAPIC));
    state.pit = TRY(vm.pit2());
    state.clock = TRY(vm.clock());
    if ((state.clock.flags & KVM_CLOCK_REALTIME) == 0) {
        // Kernels before 5.16, or a host clocksource KVM cannot pair with the wall clock: the
        // time read here, a moment after the clock, serves restored_clock() as well.
        state.clock.realtime = realtime_now_ns();
        state.clock.flags |= KVM_CLOCK_REALTIME;
    }
    return state;
}

Result<void> restore_vm(const Vm& vm, const VmState& state) {
    // The chip ids say where each one goes; a doctored file must not send a PIC's bytes to
    // the IOAPIC.
    if (state.pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER || state.pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE ||
        state.ioapic.chip_id != KVM_IRQCHIP_IOAPIC)
        return fail(ErrorKind::Invalid, "VM state: interrupt controller ids are not PIC master, slave, IOAPIC");
    TRY_VOID(vm.set_irqchip(state.pic_master));
    TRY_VOID(vm.set_irqchip(state.pic_slave));
    TRY_VOID(vm.set_irqchip(state.ioapic));
    TRY_VOID(vm.set_pit2(state.pit));
    TRY_VOID(vm.set_clock(restored_clock(state.clock, realtime_now_ns())));
    return {};
}

uint64_t realtime_now_ns() {
    timespec now{};
    ::clock_gettime(CLOCK_REALTIME, &now);
    return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(now.tv_nsec);
}

kvm_clock_data restored_clock(const kvm_clock_data& saved, uint64_t now_ns) {
    // The guest's clock goes on from where it was saved, stepped forward by the wall-clock time
    // that passed since, so a restored guest does not wake up in the past (Firecracker documents
    // that its restored guests' clocks are stale). The step is ours rather than KVM's
    // (KVM_CLOCK_REALTIME) so that it works on every kernel; the microseconds between reading
    // the time here and the ioctl do not matter. Only a step a saved snapshot can explain is
    // taken: forward, under ten years.
    constexpr uint64_t k_max_step_ns = 10ull * 366 * 24 * 3600 * 1'000'000'000u;
    kvm_clock_data clock{};
    clock.clock = saved.clock;
    if ((saved.flags & KVM_CLOCK_REALTIME) != 0 && saved.realtime != 0 && saved.realtime <= now_ns &&
        now_ns - saved.realtime < k_max_step_ns)
        clock.clock += now_ns - saved.realtime;
    return clock;
}

}  // namespace corral::vmm::kvm
