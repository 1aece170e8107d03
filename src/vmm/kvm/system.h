#pragma once

#include <linux/kvm.h>

#include <memory>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::vmm::kvm {

class Vm;

/// The KVM subsystem (/dev/kvm): capabilities, supported CPUID, and VM creation.
class System {
public:
    /// Opens /dev/kvm (or `path`) and checks the API version.
    static Result<System> open(const char* path = "/dev/kvm");

    int fd() const { return m_fd.get(); }
    /// KVM_CHECK_EXTENSION: 0 when absent, otherwise a capability-specific value.
    int check_extension(long capability) const;
    /// KVM_GET_VCPU_MMAP_SIZE: the size of each vCPU's kvm_run area.
    Result<size_t> vcpu_mmap_size() const;
    /// KVM_GET_SUPPORTED_CPUID: the CPUID leaves KVM can present to a guest.
    Result<std::vector<kvm_cpuid_entry2>> supported_cpuid() const;
    /// KVM_GET_MSR_INDEX_LIST.
    Result<std::vector<uint32_t>> msr_index_list() const;
    /// KVM_CREATE_VM.
    Result<Vm> create_vm() const;

private:
    explicit System(UniqueFd fd) : m_fd(std::move(fd)) {}
    UniqueFd m_fd;
};

}  // namespace corral::vmm::kvm
