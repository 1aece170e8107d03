#include "vmm/arch/x86_64/cpuid.h"

#include <linux/kvm_para.h>

#include <algorithm>
#include <bit>
#include <cstring>

// References: Intel SDM vol. 2A "CPUID" (leaves 1, 4, 6, 0xB, 0x1F); AMD APM vol. 3 appendix E
// (0x80000001, 0x80000008, 0x8000001D, 0x8000001E); Linux Documentation/virt/kvm/x86/cpuid.rst
// (0x40000000, 0x40000001).
//
// The topology presented: one package of `cpu_count` cores, one thread per core, x2APIC id (and
// initial APIC id) of vCPU i = i. That matches the MP table and the MADT, and is what KVM assigns
// as long as the monitor creates vCPU i with id i.
namespace corral::vmm::x86 {
namespace {

constexpr uint32_t k_leaf_vendor = 0x0;
constexpr uint32_t k_leaf_features = 0x1;
constexpr uint32_t k_leaf_cache_parameters = 0x4;
constexpr uint32_t k_leaf_thermal_power = 0x6;
constexpr uint32_t k_leaf_topology = 0xB;
constexpr uint32_t k_leaf_topology_v2 = 0x1F;
constexpr uint32_t k_leaf_extended_features = 0x80000001;
constexpr uint32_t k_leaf_address_sizes = 0x80000008;
constexpr uint32_t k_leaf_amd_cache_topology = 0x8000001D;
constexpr uint32_t k_leaf_amd_extended_apic_id = 0x8000001E;

// Leaf 1.
constexpr uint32_t k_ecx_hypervisor = 1u << 31;
constexpr uint32_t k_edx_htt = 1u << 28;
// Leaf 6 EAX bit 2, ARAT: the LAPIC timer keeps running in deep C-states. KVM emulates the LAPIC
// timer, so this is true in every guest, and it is the only bit KVM reports in leaf 6. Without it
// Linux flags the LAPIC timer CLOCK_EVT_FEAT_C3STOP and, with no HPET/PIT clock event on a
// hardware-reduced platform, has no broadcast device to fall back on.
constexpr uint32_t k_eax_arat = 1u << 2;
// 0x80000001 ECX bit 1, CmpLegacy: HTT/LogicalProcessorCount count cores, not threads.
constexpr uint32_t k_ecx_cmp_legacy = 1u << 1;
// Leaf 0xB/0x1F level types (ECX[15:8]).
constexpr uint32_t k_level_type_invalid = 0;
constexpr uint32_t k_level_type_smt = 1;
constexpr uint32_t k_level_type_core = 2;

bool names_vendor(const kvm_cpuid_entry2& entry, const char (&name)[13]) {
    uint32_t ebx, edx, ecx;  // the vendor string is EBX, EDX, ECX in that order
    std::memcpy(&ebx, name, 4);
    std::memcpy(&edx, name + 4, 4);
    std::memcpy(&ecx, name + 8, 4);
    return entry.ebx == ebx && entry.edx == edx && entry.ecx == ecx;
}

const kvm_cpuid_entry2* find_leaf(std::span<const kvm_cpuid_entry2> entries, uint32_t function) {
    auto it = std::find_if(entries.begin(), entries.end(),
                           [&](const kvm_cpuid_entry2& e) { return e.function == function; });
    return it == entries.end() ? nullptr : &*it;
}

// Calls `edit` on every entry (every subleaf) of `function`.
template <typename Edit>
void for_leaf(std::vector<kvm_cpuid_entry2>& entries, uint32_t function, Edit edit) {
    for (auto& entry : entries)
        if (entry.function == function)
            edit(entry);
}

kvm_cpuid_entry2& find_or_add(std::vector<kvm_cpuid_entry2>& entries, uint32_t function) {
    for (auto& entry : entries)
        if (entry.function == function)
            return entry;
    kvm_cpuid_entry2 entry{};
    entry.function = function;
    entries.push_back(entry);
    return entries.back();
}

// Bits needed to number `count` items: the shift from one topology level's id to the next.
uint32_t id_bits(uint32_t count) {
    return count <= 1 ? 0 : static_cast<uint32_t>(std::bit_width(count - 1));
}

uint32_t replace_bits(uint32_t value, unsigned low, unsigned width, uint32_t field) {
    uint32_t mask = ((width == 32 ? 0 : (1u << width)) - 1) << low;
    return (value & ~mask) | ((field << low) & mask);
}

// Leaves 0xB and 0x1F: subleaf 0 is the SMT level (1 thread per core), subleaf 1 the core level
// (cpu_count cores per package), subleaf 2 the invalid level that ends the enumeration. Each
// subleaf's EDX is the x2APIC id. The host's own subleaves are dropped rather than edited, since
// they may describe levels (module, tile, die) that this topology does not have.
void set_extended_topology(std::vector<kvm_cpuid_entry2>& entries, uint32_t function,
                           uint32_t cpu_index, uint32_t cpu_count) {
    if (!find_leaf(entries, function))
        return;
    std::erase_if(entries, [&](const kvm_cpuid_entry2& e) { return e.function == function; });
    struct Level {
        uint32_t shift, processors, type;
    };
    const Level levels[] = {
        {0, 1, k_level_type_smt},
        {id_bits(cpu_count), cpu_count, k_level_type_core},
        {0, 0, k_level_type_invalid},
    };
    for (uint32_t i = 0; i < std::size(levels); ++i) {
        kvm_cpuid_entry2 entry{};
        entry.function = function;
        entry.index = i;
        entry.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
        entry.eax = levels[i].shift;                // EAX[4:0]: shift to the next level's id
        entry.ebx = levels[i].processors & 0xFFFF;  // EBX[15:0]: logical processors at this level
        entry.ecx = (levels[i].type << 8) | i;      // ECX[15:8] level type, ECX[7:0] level number
        entry.edx = cpu_index;                      // x2APIC id
        entries.push_back(entry);
    }
}

// EAX[25:14] of Intel leaf 4 and AMD leaf 0x8000001D: logical processors sharing this cache, minus
// one. With one thread per core, L1 and L2 are private to a vCPU; L3 (and beyond) is shared by the
// package. The host's values would describe its own SMT siblings and core counts instead.
uint32_t cache_sharing_field(uint32_t eax, uint32_t cpu_count) {
    uint32_t level = (eax >> 5) & 0x7;
    uint32_t sharing = level >= 3 ? std::min(cpu_count - 1, 0xFFFu) : 0;
    return replace_bits(eax, 14, 12, sharing);
}

// Cache type EAX[4:0] = 0 ends the list of caches.
bool is_cache_subleaf(const kvm_cpuid_entry2& entry) {
    return (entry.eax & 0x1F) != 0;
}

}  // namespace

CpuVendor cpu_vendor(std::span<const kvm_cpuid_entry2> entries) {
    const kvm_cpuid_entry2* leaf0 = find_leaf(entries, k_leaf_vendor);
    if (!leaf0)
        return CpuVendor::Other;
    if (names_vendor(*leaf0, "GenuineIntel"))
        return CpuVendor::Intel;
    if (names_vendor(*leaf0, "AuthenticAMD") || names_vendor(*leaf0, "HygonGenuine"))
        return CpuVendor::Amd;
    return CpuVendor::Other;
}

std::vector<kvm_cpuid_entry2> shape_cpuid(std::span<const kvm_cpuid_entry2> supported,
                                          uint32_t cpu_index, uint32_t cpu_count) {
    std::vector<kvm_cpuid_entry2> entries(supported.begin(), supported.end());
    cpu_count = std::max(cpu_count, 1u);
    const CpuVendor vendor = cpu_vendor(supported);
    const uint32_t cores_minus_one = cpu_count - 1;
    // Entries are edited in place, so KVM_CPUID_FLAG_SIGNIFCANT_INDEX entries keep index and flags.

    for_leaf(entries, k_leaf_features, [&](kvm_cpuid_entry2& e) {
        e.ebx = replace_bits(e.ebx, 24, 8, cpu_index);                   // initial APIC id
        e.ebx = replace_bits(e.ebx, 16, 8, std::min(cpu_count, 0xFFu));  // logical processors
        e.ecx |= k_ecx_hypervisor;  // without it Linux never looks at the 0x40000000 leaves
        e.edx = cpu_count > 1 ? e.edx | k_edx_htt : e.edx & ~k_edx_htt;
        // ECX bit 24 (TSC-deadline timer) is left as KVM reports it: KVM emulates it.
    });

    if (vendor == CpuVendor::Intel) {
        for_leaf(entries, k_leaf_cache_parameters, [&](kvm_cpuid_entry2& e) {
            if (!is_cache_subleaf(e))
                return;
            e.eax = cache_sharing_field(e.eax, cpu_count);
            // EAX[31:26]: addressable core ids in the package, minus one (a 6-bit field).
            e.eax = replace_bits(e.eax, 26, 6, std::min(cores_minus_one, 63u));
        });
    }

    // Leaf 6 describes the host's thermal and power management (HWP, EPB, digital thermal sensor),
    // whose MSRs a guest cannot use; only ARAT survives (see k_eax_arat).
    for_leaf(entries, k_leaf_thermal_power, [&](kvm_cpuid_entry2& e) {
        e.eax &= k_eax_arat;
        e.ebx = e.ecx = e.edx = 0;
    });

    set_extended_topology(entries, k_leaf_topology, cpu_index, cpu_count);
    set_extended_topology(entries, k_leaf_topology_v2, cpu_index, cpu_count);

    if (vendor == CpuVendor::Amd) {
        for_leaf(entries, k_leaf_extended_features, [&](kvm_cpuid_entry2& e) {
            e.ecx = cpu_count > 1 ? e.ecx | k_ecx_cmp_legacy : e.ecx & ~k_ecx_cmp_legacy;
        });
        for_leaf(entries, k_leaf_address_sizes, [&](kvm_cpuid_entry2& e) {
            e.ecx = replace_bits(e.ecx, 0, 8, cores_minus_one);      // NC: cores in the package - 1
            e.ecx = replace_bits(e.ecx, 12, 4, id_bits(cpu_count));  // ApicIdCoreIdSize
        });
        for_leaf(entries, k_leaf_amd_cache_topology, [&](kvm_cpuid_entry2& e) {
            if (is_cache_subleaf(e))
                e.eax = cache_sharing_field(e.eax, cpu_count);
        });
        for_leaf(entries, k_leaf_amd_extended_apic_id, [&](kvm_cpuid_entry2& e) {
            e.eax = cpu_index;  // extended APIC id
            // EBX[7:0] compute unit (core) id; EBX[15:8] threads per compute unit - 1 = 0.
            e.ebx = cpu_index & 0xFF;
            e.ecx = 0;  // node 0 of one node per package
            e.edx = 0;
        });
    }

    // KVM's paravirtual leaves: the signature leaf names the highest KVM leaf, and 0x40000001 keeps
    // exactly the features KVM reports (kvm-clock among them). If KVM reported no feature leaf, an
    // empty one keeps the range consistent; has_kvm_clock() then tells the caller.
    kvm_cpuid_entry2& signature = find_or_add(entries, KVM_CPUID_SIGNATURE);
    signature.eax = KVM_CPUID_FEATURES;
    std::memcpy(&signature.ebx, "KVMK", 4);
    std::memcpy(&signature.ecx, "VMKV", 4);
    std::memcpy(&signature.edx, "M\0\0\0", 4);
    find_or_add(entries, KVM_CPUID_FEATURES);

    return entries;
}

bool has_kvm_clock(std::span<const kvm_cpuid_entry2> entries) {
    const kvm_cpuid_entry2* features = find_leaf(entries, KVM_CPUID_FEATURES);
    return features && (features->eax & (1u << KVM_FEATURE_CLOCKSOURCE2)) != 0;
}

}  // namespace corral::vmm::x86
