#include "vmm/kvm/system.h"

#include <fcntl.h>
#include <sys/ioctl.h>

#include <algorithm>

#include "vmm/kvm/variable_size_ioctls.h"
#include "vmm/kvm/vm.h"

namespace corral::vmm::kvm {

Result<System> System::open(const char* path) {
    int fd = ::open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return fail_errno(std::string("cannot open ") + path);
    UniqueFd owned(fd);
    int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        return fail("KVM API version " + std::to_string(version) + " is not the supported " +
                    std::to_string(KVM_API_VERSION));
    return System(std::move(owned));
}

int System::check_extension(long capability) const {
    int result = ::ioctl(m_fd.get(), KVM_CHECK_EXTENSION, capability);
    return result < 0 ? 0 : result;
}

Result<size_t> System::vcpu_mmap_size() const {
    int size = ::ioctl(m_fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (size <= 0) return fail_errno("KVM_GET_VCPU_MMAP_SIZE");
    return static_cast<size_t>(size);
}

Result<std::vector<kvm_cpuid_entry2>> System::supported_cpuid() const {
    // KVM reports E2BIG while the buffer is too small; grow it until the table fits.
    for (uint32_t capacity = 64; capacity <= 4096; capacity *= 2) {
        VariableSizeBuffer<CpuidHeader, kvm_cpuid_entry2> buffer(capacity);
        buffer.header()->nent = capacity;
        if (::ioctl(m_fd.get(), k_ioctl_get_supported_cpuid, buffer.data()) == 0)
            return buffer.entries(std::min(buffer.header()->nent, capacity));
        if (errno != E2BIG) return fail_errno("KVM_GET_SUPPORTED_CPUID");
    }
    return fail("KVM_GET_SUPPORTED_CPUID: table larger than 4096 entries");
}

Result<std::vector<uint32_t>> System::msr_index_list() const {
    for (uint32_t capacity = 256; capacity <= 16384; capacity *= 2) {
        VariableSizeBuffer<MsrListHeader, uint32_t> buffer(capacity);
        buffer.header()->nmsrs = capacity;
        if (::ioctl(m_fd.get(), k_ioctl_get_msr_index_list, buffer.data()) == 0)
            return buffer.entries(std::min(buffer.header()->nmsrs, capacity));
        if (errno != E2BIG) return fail_errno("KVM_GET_MSR_INDEX_LIST");
    }
    return fail("KVM_GET_MSR_INDEX_LIST: list larger than 16384 entries");
}

Result<Vm> System::create_vm() const {
    int fd = ::ioctl(m_fd.get(), KVM_CREATE_VM, 0);
    if (fd < 0) return fail_errno("KVM_CREATE_VM");
    auto run_size = TRY(vcpu_mmap_size());
    return Vm(UniqueFd(fd), run_size);
}

}  // namespace corral::vmm::kvm
