#include "vmm/kvm/vcpu.h"

#include <sys/ioctl.h>

#include <algorithm>
#include <cerrno>

#include "vmm/kvm/variable_size_ioctls.h"

namespace corral::vmm::kvm {
namespace {

template <typename T>
Result<T> get(int fd, unsigned long request, const char* name) {
    T value{};
    if (::ioctl(fd, request, &value) < 0) return fail_errno(name);
    return value;
}

template <typename T>
Result<void> set(int fd, unsigned long request, const T& value, const char* name) {
    if (::ioctl(fd, request, &value) < 0) return fail_errno(name);
    return {};
}

}  // namespace

Result<void> Vcpu::run() const {
    if (::ioctl(m_fd.get(), KVM_RUN, 0) < 0) return fail_errno("KVM_RUN");
    return {};
}

Result<kvm_regs> Vcpu::regs() const { return get<kvm_regs>(m_fd.get(), KVM_GET_REGS, "KVM_GET_REGS"); }
Result<void> Vcpu::set_regs(const kvm_regs& regs) const {
    return set(m_fd.get(), KVM_SET_REGS, regs, "KVM_SET_REGS");
}
Result<kvm_sregs> Vcpu::sregs() const {
    return get<kvm_sregs>(m_fd.get(), KVM_GET_SREGS, "KVM_GET_SREGS");
}
Result<void> Vcpu::set_sregs(const kvm_sregs& sregs) const {
    return set(m_fd.get(), KVM_SET_SREGS, sregs, "KVM_SET_SREGS");
}
Result<kvm_fpu> Vcpu::fpu() const { return get<kvm_fpu>(m_fd.get(), KVM_GET_FPU, "KVM_GET_FPU"); }
Result<void> Vcpu::set_fpu(const kvm_fpu& fpu) const {
    return set(m_fd.get(), KVM_SET_FPU, fpu, "KVM_SET_FPU");
}
Result<kvm_lapic_state> Vcpu::lapic() const {
    return get<kvm_lapic_state>(m_fd.get(), KVM_GET_LAPIC, "KVM_GET_LAPIC");
}
Result<void> Vcpu::set_lapic(const kvm_lapic_state& state) const {
    return set(m_fd.get(), KVM_SET_LAPIC, state, "KVM_SET_LAPIC");
}
Result<kvm_mp_state> Vcpu::mp_state() const {
    return get<kvm_mp_state>(m_fd.get(), KVM_GET_MP_STATE, "KVM_GET_MP_STATE");
}
Result<void> Vcpu::set_mp_state(const kvm_mp_state& state) const {
    return set(m_fd.get(), KVM_SET_MP_STATE, state, "KVM_SET_MP_STATE");
}

Result<XsaveArea> Vcpu::xsave() const {
    return get<XsaveArea>(m_fd.get(), k_ioctl_get_xsave, "KVM_GET_XSAVE");
}
Result<void> Vcpu::set_xsave(const XsaveArea& state) const {
    return set(m_fd.get(), k_ioctl_set_xsave, state, "KVM_SET_XSAVE");
}
Result<kvm_xcrs> Vcpu::xcrs() const { return get<kvm_xcrs>(m_fd.get(), KVM_GET_XCRS, "KVM_GET_XCRS"); }
Result<void> Vcpu::set_xcrs(const kvm_xcrs& xcrs) const {
    return set(m_fd.get(), KVM_SET_XCRS, xcrs, "KVM_SET_XCRS");
}
Result<kvm_vcpu_events> Vcpu::vcpu_events() const {
    return get<kvm_vcpu_events>(m_fd.get(), KVM_GET_VCPU_EVENTS, "KVM_GET_VCPU_EVENTS");
}
Result<void> Vcpu::set_vcpu_events(const kvm_vcpu_events& events) const {
    return set(m_fd.get(), KVM_SET_VCPU_EVENTS, events, "KVM_SET_VCPU_EVENTS");
}
Result<kvm_debugregs> Vcpu::debug_regs() const {
    return get<kvm_debugregs>(m_fd.get(), KVM_GET_DEBUGREGS, "KVM_GET_DEBUGREGS");
}
Result<void> Vcpu::set_debug_regs(const kvm_debugregs& regs) const {
    return set(m_fd.get(), KVM_SET_DEBUGREGS, regs, "KVM_SET_DEBUGREGS");
}

Result<std::vector<kvm_cpuid_entry2>> Vcpu::cpuid() const {
    // KVM answers E2BIG when the buffer is too small; 256 entries is more than KVM's own limit
    // (KVM_MAX_CPUID_ENTRIES, 256).
    constexpr size_t k_max_entries = 256;
    VariableSizeBuffer<CpuidHeader, kvm_cpuid_entry2> buffer(k_max_entries);
    buffer.header()->nent = k_max_entries;
    if (::ioctl(m_fd.get(), k_ioctl_get_cpuid2, buffer.data()) < 0) return fail_errno("KVM_GET_CPUID2");
    return buffer.entries(std::min<size_t>(buffer.header()->nent, k_max_entries));
}

Result<uint32_t> Vcpu::tsc_khz() const {
    int khz = ::ioctl(m_fd.get(), KVM_GET_TSC_KHZ, 0);
    if (khz < 0) return fail_errno("KVM_GET_TSC_KHZ");
    return static_cast<uint32_t>(khz);
}

Result<void> Vcpu::complete_pending_io() const {
    kvm_run* run = run_area();
    uint8_t previous = run->immediate_exit;
    run->immediate_exit = 1;
    int result = ::ioctl(m_fd.get(), KVM_RUN, 0);
    int error = errno;
    run->immediate_exit = previous;
    // With immediate_exit KVM_RUN returns EINTR once pending operations are complete.
    if (result < 0 && error != EINTR) {
        errno = error;
        return fail_errno("KVM_RUN (completing pending I/O)");
    }
    return {};
}

Result<void> Vcpu::set_msrs(std::span<const kvm_msr_entry> entries) const {
    VariableSizeBuffer<MsrsHeader, kvm_msr_entry> buffer(entries.size());
    buffer.header()->nmsrs = static_cast<uint32_t>(entries.size());
    buffer.set_entries(entries);
    int written = ::ioctl(m_fd.get(), k_ioctl_set_msrs, buffer.data());
    if (written < 0) return fail_errno("KVM_SET_MSRS");
    if (static_cast<size_t>(written) != entries.size())
        return fail("KVM_SET_MSRS refused MSR " +
                    std::to_string(entries[static_cast<size_t>(written)].index));
    return {};
}

Result<std::vector<kvm_msr_entry>> Vcpu::msrs(std::span<const uint32_t> indices) const {
    std::vector<kvm_msr_entry> requested(indices.size());
    for (size_t i = 0; i < indices.size(); ++i) requested[i].index = indices[i];
    VariableSizeBuffer<MsrsHeader, kvm_msr_entry> buffer(indices.size());
    buffer.header()->nmsrs = static_cast<uint32_t>(indices.size());
    buffer.set_entries(requested);
    int read = ::ioctl(m_fd.get(), k_ioctl_get_msrs, buffer.data());
    if (read < 0) return fail_errno("KVM_GET_MSRS");
    return buffer.entries(std::min(static_cast<size_t>(read), indices.size()));
}

Result<void> Vcpu::set_cpuid(std::span<const kvm_cpuid_entry2> entries) const {
    VariableSizeBuffer<CpuidHeader, kvm_cpuid_entry2> buffer(entries.size());
    buffer.header()->nent = static_cast<uint32_t>(entries.size());
    buffer.set_entries(entries);
    if (::ioctl(m_fd.get(), k_ioctl_set_cpuid2, buffer.data()) < 0) return fail_errno("KVM_SET_CPUID2");
    m_given_cpuid.assign(entries.begin(), entries.end());
    return {};
}

}  // namespace corral::vmm::kvm
