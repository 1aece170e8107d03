#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

/// C layouts of KVM's variable-size ioctl arguments.
///
/// Debian's 6.1 uapi headers declare the trailing arrays of kvm_cpuid2, kvm_msrs and kvm_msr_list
/// with __DECLARE_FLEX_ARRAY, an empty struct wrapper that takes one byte in C++. That shifts the
/// array and changes sizeof, which is encoded in the ioctl number: KVM_GET_SUPPORTED_CPUID comes
/// out as 0xc00cae05 instead of 0xc008ae05 and KVM answers EINVAL. So the headers and the ioctl
/// numbers are defined here with the kernel's C layout.
namespace corral::vmm::kvm {

struct CpuidHeader {
    uint32_t nent;
    uint32_t padding;
};
struct MsrsHeader {
    uint32_t nmsrs;
    uint32_t pad;
};
struct MsrListHeader {
    uint32_t nmsrs;
};
/// kvm_irq_routing without its entries (same __DECLARE_FLEX_ARRAY problem).
struct IrqRoutingHeader {
    uint32_t nr;
    uint32_t flags;
};

/// kvm_xsave without its trailing `extra` array (KVM_GET_XSAVE2's, same problem): the 4 KiB
/// legacy area KVM_GET_XSAVE and KVM_SET_XSAVE move.
struct XsaveArea {
    uint32_t region[1024];
};

constexpr unsigned long k_ioctl_get_xsave = _IOR(KVMIO, 0xa4, XsaveArea);
constexpr unsigned long k_ioctl_set_xsave = _IOW(KVMIO, 0xa5, XsaveArea);
constexpr unsigned long k_ioctl_get_supported_cpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
constexpr unsigned long k_ioctl_set_cpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
constexpr unsigned long k_ioctl_get_cpuid2 = _IOWR(KVMIO, 0x91, CpuidHeader);
constexpr unsigned long k_ioctl_get_msrs = _IOWR(KVMIO, 0x88, MsrsHeader);
constexpr unsigned long k_ioctl_set_msrs = _IOW(KVMIO, 0x89, MsrsHeader);
constexpr unsigned long k_ioctl_get_msr_index_list = _IOWR(KVMIO, 0x02, MsrListHeader);
constexpr unsigned long k_ioctl_set_gsi_routing = _IOW(KVMIO, 0x6a, IrqRoutingHeader);

static_assert(k_ioctl_get_supported_cpuid == 0xc008ae05);
static_assert(k_ioctl_set_cpuid2 == 0x4008ae90);
static_assert(k_ioctl_get_xsave == 0x9000aea4);
static_assert(k_ioctl_set_xsave == 0x5000aea5);
static_assert(k_ioctl_get_cpuid2 == 0xc008ae91);
static_assert(k_ioctl_get_msrs == 0xc008ae88);
static_assert(k_ioctl_set_msrs == 0x4008ae89);
static_assert(k_ioctl_get_msr_index_list == 0xc004ae02);
static_assert(k_ioctl_set_gsi_routing == 0x4008ae6a);
static_assert(sizeof(kvm_irq_routing_entry) == 48);

/// A header followed by `count` entries in one buffer, as the variable-size ioctls take them.
template <typename Header, typename Entry>
class VariableSizeBuffer {
public:
    explicit VariableSizeBuffer(size_t count)
        : m_bytes(sizeof(Header) + count * sizeof(Entry)) {}

    Header* header() { return reinterpret_cast<Header*>(m_bytes.data()); }
    void* data() { return m_bytes.data(); }
    std::vector<Entry> entries(size_t count) const {
        std::vector<Entry> result(count);
        std::memcpy(result.data(), m_bytes.data() + sizeof(Header), count * sizeof(Entry));
        return result;
    }
    void set_entries(std::span<const Entry> entries) {
        std::memcpy(m_bytes.data() + sizeof(Header), entries.data(), entries.size() * sizeof(Entry));
    }

private:
    // operator new's alignment (16) covers every entry type.
    std::vector<uint8_t> m_bytes;
};

}  // namespace corral::vmm::kvm
