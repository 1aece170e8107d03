#include "vmm/kvm/vcpu.h"

#include <sys/ioctl.h>

#include <memory>

namespace corral::kvm {
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

Result<void> Vcpu::set_msrs(std::span<const kvm_msr_entry> entries) const {
    size_t bytes = sizeof(kvm_msrs) + entries.size() * sizeof(kvm_msr_entry);
    std::unique_ptr<uint8_t[]> buffer(new uint8_t[bytes]());
    auto* msrs = reinterpret_cast<kvm_msrs*>(buffer.get());
    msrs->nmsrs = static_cast<uint32_t>(entries.size());
    std::copy(entries.begin(), entries.end(), msrs->entries);
    int written = ::ioctl(m_fd.get(), KVM_SET_MSRS, msrs);
    if (written < 0) return fail_errno("KVM_SET_MSRS");
    if (static_cast<size_t>(written) != entries.size())
        return fail("KVM_SET_MSRS refused MSR " +
                    std::to_string(entries[static_cast<size_t>(written)].index));
    return {};
}

Result<std::vector<kvm_msr_entry>> Vcpu::msrs(std::span<const uint32_t> indices) const {
    size_t bytes = sizeof(kvm_msrs) + indices.size() * sizeof(kvm_msr_entry);
    std::unique_ptr<uint8_t[]> buffer(new uint8_t[bytes]());
    auto* msrs = reinterpret_cast<kvm_msrs*>(buffer.get());
    msrs->nmsrs = static_cast<uint32_t>(indices.size());
    for (size_t i = 0; i < indices.size(); ++i) msrs->entries[i].index = indices[i];
    int read = ::ioctl(m_fd.get(), KVM_GET_MSRS, msrs);
    if (read < 0) return fail_errno("KVM_GET_MSRS");
    return std::vector<kvm_msr_entry>(msrs->entries, msrs->entries + read);
}

Result<void> Vcpu::set_cpuid(std::span<const kvm_cpuid_entry2> entries) const {
    size_t bytes = sizeof(kvm_cpuid2) + entries.size() * sizeof(kvm_cpuid_entry2);
    std::unique_ptr<uint8_t[]> buffer(new uint8_t[bytes]());
    auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buffer.get());
    cpuid->nent = static_cast<uint32_t>(entries.size());
    std::copy(entries.begin(), entries.end(), cpuid->entries);
    if (::ioctl(m_fd.get(), KVM_SET_CPUID2, cpuid) < 0) return fail_errno("KVM_SET_CPUID2");
    return {};
}

}  // namespace corral::kvm
