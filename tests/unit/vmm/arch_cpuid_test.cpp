#include "vmm/arch/x86_64/cpuid.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace corral::vmm::x86 {
namespace {

using Table = std::vector<kvm_cpuid_entry2>;
constexpr uint32_t k_significant = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;

kvm_cpuid_entry2 leaf(uint32_t function, uint32_t index, uint32_t flags, uint32_t eax, uint32_t ebx,
                      uint32_t ecx, uint32_t edx) {
    kvm_cpuid_entry2 e{};
    e.function = function;
    e.index = index;
    e.flags = flags;
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = ecx;
    e.edx = edx;
    return e;
}

kvm_cpuid_entry2 vendor_leaf(uint32_t max_leaf, const char (&name)[13]) {
    uint32_t ebx, edx, ecx;
    std::memcpy(&ebx, name, 4);
    std::memcpy(&edx, name + 4, 4);
    std::memcpy(&ecx, name + 8, 4);
    return leaf(0, 0, 0, max_leaf, ebx, ecx, edx);
}

kvm_cpuid_entry2 kvm_signature_leaf() {
    uint32_t regs[3];
    std::memcpy(regs, "KVMKVMKVM\0\0\0", 12);
    return leaf(0x40000000, 0, 0, 0x40000001, regs[0], regs[1], regs[2]);
}

// Cache subleaf EAX (Intel leaf 4 / AMD 0x8000001D): type, level, self-initializing, sharing,
// cores.
uint32_t cache_eax(uint32_t type, uint32_t level, uint32_t sharing_minus_one,
                   uint32_t cores_minus_one) {
    return type | (level << 5) | (1u << 8) | (sharing_minus_one << 14) | (cores_minus_one << 26);
}

// What KVM_GET_SUPPORTED_CPUID might say on an 8-core, 16-thread Intel host.
Table intel_host() {
    return {
        vendor_leaf(0x1F, "GenuineIntel"),
        leaf(1, 0, 0, 0x000906EA, 0x05100800, (1u << 24) | (1u << 0), (1u << 28) | (1u << 0)),
        leaf(4, 0, k_significant, cache_eax(1, 1, 1, 7), 0x01C0003F, 0x3F, 0),     // L1d
        leaf(4, 1, k_significant, cache_eax(2, 1, 1, 7), 0x01C0003F, 0x3F, 0),     // L1i
        leaf(4, 2, k_significant, cache_eax(3, 2, 1, 7), 0x00C0003F, 0x3FF, 0),    // L2
        leaf(4, 3, k_significant, cache_eax(3, 3, 15, 7), 0x03C0003F, 0x2FFF, 6),  // L3
        leaf(4, 4, k_significant, 0, 0, 0, 0),                                     // no more caches
        leaf(6, 0, 0, 0x77, 0x2, 0x9, 0),
        leaf(0xB, 0, k_significant, 1, 2, 0x100, 5),
        leaf(0xB, 1, k_significant, 4, 16, 0x201, 5),
        leaf(0x1F, 0, k_significant, 1, 2, 0x100, 5),
        leaf(0x1F, 1, k_significant, 4, 16, 0x201, 5),
        leaf(0x1F, 2, k_significant, 5, 16, 0x502, 5),  // a die level we do not present
        kvm_signature_leaf(),
        leaf(0x40000001, 0, 0, 0x01007AFB, 0, 0, 0),
        leaf(0x80000001, 0, 0, 0, 0, 0x121, 0x2C100800),
        leaf(0x80000008, 0, 0, 0x3027, 0, 0, 0),
    };
}

// What KVM_GET_SUPPORTED_CPUID might say on a 16-core Zen host (no KVM signature leaf, to check
// that shaping adds it).
Table amd_host() {
    return {
        vendor_leaf(0x10, "AuthenticAMD"),
        leaf(1, 0, 0, 0x00A20F10, 0x07200800, 1u << 24, 1u << 28),
        leaf(4, 0, k_significant, 0, 0, 0, 0),
        leaf(6, 0, 0, 0x4, 0, 0, 0),
        leaf(0xB, 0, k_significant, 1, 2, 0x100, 7),
        leaf(0xB, 1, k_significant, 5, 32, 0x201, 7),
        leaf(0x40000001, 0, 0, 0x01007AFB, 0, 0, 0),
        leaf(0x80000001, 0, 0, 0x00A20F10, 0, 0x75C237FD, 0x2FD3FBFF),  // CmpLegacy (bit 1) clear
        leaf(0x80000008, 0, 0, 0x3030, 0, 0x0003700F, 0),  // PerfTscSize 3, ApicIdSize 7, NC 15
        leaf(0x8000001D, 0, k_significant, cache_eax(1, 1, 1, 0), 0x01C0003F, 0x3F, 0),
        leaf(0x8000001D, 1, k_significant, cache_eax(2, 1, 1, 0), 0x01C0003F, 0x3F, 0),
        leaf(0x8000001D, 2, k_significant, cache_eax(3, 2, 1, 0), 0x01C0003F, 0x3FF, 2),
        leaf(0x8000001D, 3, k_significant, cache_eax(3, 3, 15, 0), 0x03C0003F, 0x7FFF, 1),
        leaf(0x8000001D, 4, k_significant, 0, 0, 0, 0),
        leaf(0x8000001E, 0, 0, 0x12, 0x0109, 0x0300, 0),
    };
}

std::vector<kvm_cpuid_entry2> subleaves(const Table& table, uint32_t function) {
    std::vector<kvm_cpuid_entry2> out;
    std::copy_if(table.begin(), table.end(), std::back_inserter(out),
                 [&](const kvm_cpuid_entry2& e) { return e.function == function; });
    std::sort(out.begin(), out.end(),
              [](const auto& a, const auto& b) { return a.index < b.index; });
    return out;
}

kvm_cpuid_entry2 only(const Table& table, uint32_t function) {
    auto found = subleaves(table, function);
    EXPECT_EQ(found.size(), 1u) << "leaf 0x" << std::hex << function;
    return found.empty() ? kvm_cpuid_entry2{} : found[0];
}

void expect_topology_leaf(const Table& table, uint32_t function, uint32_t cpu_index) {
    SCOPED_TRACE("leaf 0x" + std::to_string(function));
    auto levels = subleaves(table, function);
    ASSERT_EQ(levels.size(), 3u);
    for (uint32_t i = 0; i < 3; ++i) {
        EXPECT_EQ(levels[i].index, i);
        EXPECT_EQ(levels[i].flags, k_significant);
        EXPECT_EQ(levels[i].edx, cpu_index);  // x2APIC id
        EXPECT_EQ(levels[i].ecx & 0xFF, i);   // level number
    }
    // SMT: one thread per core.
    EXPECT_EQ(levels[0].eax, 0u);
    EXPECT_EQ(levels[0].ebx, 1u);
    EXPECT_EQ(levels[0].ecx >> 8, 1u);
    // Core: 4 cores, 2 bits of APIC id.
    EXPECT_EQ(levels[1].eax, 2u);
    EXPECT_EQ(levels[1].ebx, 4u);
    EXPECT_EQ(levels[1].ecx >> 8, 2u);
    // End of enumeration.
    EXPECT_EQ(levels[2].ebx, 0u);
    EXPECT_EQ(levels[2].ecx >> 8, 0u);
}

void expect_kvm_leaves(const Table& table) {
    kvm_cpuid_entry2 signature = only(table, 0x40000000);
    EXPECT_EQ(signature.eax, 0x40000001u);
    char text[12];
    std::memcpy(text, &signature.ebx, 4);
    std::memcpy(text + 4, &signature.ecx, 4);
    std::memcpy(text + 8, &signature.edx, 4);
    EXPECT_EQ(std::memcmp(text, "KVMKVMKVM\0\0\0", 12), 0);
    EXPECT_EQ(only(table, 0x40000001).eax, 0x01007AFBu);  // KVM's features untouched
    EXPECT_TRUE(has_kvm_clock(table));
}

class CpuidIntel : public testing::TestWithParam<uint32_t> {};

TEST_P(CpuidIntel, ShapesTopologyAndKeepsTheRest) {
    const uint32_t index = GetParam();
    const Table host = intel_host();
    const Table shaped = shape_cpuid(host, index, 4);

    kvm_cpuid_entry2 l1 = only(shaped, 1);
    EXPECT_EQ(l1.ebx >> 24, index);        // initial APIC id
    EXPECT_EQ((l1.ebx >> 16) & 0xFF, 4u);  // logical processors
    EXPECT_EQ(l1.ebx & 0xFFFF, 0x0800u);   // CLFLUSH size etc. kept
    EXPECT_TRUE(l1.ecx & (1u << 31));      // hypervisor
    EXPECT_TRUE(l1.ecx & (1u << 24));      // TSC-deadline kept
    EXPECT_TRUE(l1.ecx & 1u);
    EXPECT_TRUE(l1.edx & (1u << 28));  // HTT: more than one logical processor
    EXPECT_EQ(l1.eax, 0x000906EAu);

    auto caches = subleaves(shaped, 4);
    auto host_caches = subleaves(host, 4);
    ASSERT_EQ(caches.size(), 5u);
    for (size_t i = 0; i < caches.size(); ++i) {
        SCOPED_TRACE("leaf 4 subleaf " + std::to_string(i));
        EXPECT_EQ(caches[i].index, i);
        EXPECT_EQ(caches[i].flags, k_significant);
        EXPECT_EQ(caches[i].ebx, host_caches[i].ebx);  // ways, partitions, line size
        EXPECT_EQ(caches[i].ecx, host_caches[i].ecx);  // sets
        EXPECT_EQ(caches[i].edx, host_caches[i].edx);
        EXPECT_EQ(caches[i].eax & 0x3FFF, host_caches[i].eax & 0x3FFF);  // type, level, flags
    }
    for (size_t i = 0; i < 4; ++i)
        EXPECT_EQ(caches[i].eax >> 26, 3u) << i;   // cores per package - 1
    EXPECT_EQ((caches[0].eax >> 14) & 0xFFF, 0u);  // L1d private
    EXPECT_EQ((caches[1].eax >> 14) & 0xFFF, 0u);  // L1i private
    EXPECT_EQ((caches[2].eax >> 14) & 0xFFF, 0u);  // L2 private
    EXPECT_EQ((caches[3].eax >> 14) & 0xFFF, 3u);  // L3 shared by all 4
    EXPECT_EQ(caches[4].eax, 0u);                  // terminator untouched

    kvm_cpuid_entry2 power = only(shaped, 6);
    EXPECT_EQ(power.eax, 0x4u);  // ARAT only
    EXPECT_EQ(power.ebx | power.ecx | power.edx, 0u);

    expect_topology_leaf(shaped, 0xB, index);
    expect_topology_leaf(shaped, 0x1F, index);
    expect_kvm_leaves(shaped);

    // AMD-only leaves are left alone on Intel.
    EXPECT_EQ(only(shaped, 0x80000008).ecx, 0u);
    EXPECT_EQ(only(shaped, 0x80000001).ecx, 0x121u);

    // 2 host 0xB subleaves and 3 host 0x1F subleaves became 3 + 3.
    EXPECT_EQ(shaped.size(), host.size() + 1);
}

INSTANTIATE_TEST_SUITE_P(CpuIndex, CpuidIntel, testing::Values(0u, 3u));

class CpuidAmd : public testing::TestWithParam<uint32_t> {};

TEST_P(CpuidAmd, ShapesTopologyAndAddsTheKvmSignature) {
    const uint32_t index = GetParam();
    const Table host = amd_host();
    const Table shaped = shape_cpuid(host, index, 4);

    kvm_cpuid_entry2 l1 = only(shaped, 1);
    EXPECT_EQ(l1.ebx >> 24, index);
    EXPECT_EQ((l1.ebx >> 16) & 0xFF, 4u);
    EXPECT_TRUE(l1.ecx & (1u << 31));
    EXPECT_TRUE(l1.edx & (1u << 28));

    EXPECT_EQ(only(shaped, 4).eax, 0u);  // AMD has no leaf 4 data: untouched
    EXPECT_EQ(only(shaped, 6).eax, 0x4u);
    expect_topology_leaf(shaped, 0xB, index);
    EXPECT_TRUE(subleaves(shaped, 0x1F).empty());  // not invented when the host has none

    EXPECT_EQ(only(shaped, 0x80000001).ecx, 0x75C237FDu | (1u << 1));  // CmpLegacy
    EXPECT_EQ(only(shaped, 0x80000008).ecx, 0x00032003u);  // PerfTscSize kept, ApicIdSize 2, NC 3

    auto caches = subleaves(shaped, 0x8000001D);
    ASSERT_EQ(caches.size(), 5u);
    EXPECT_EQ((caches[0].eax >> 14) & 0xFFF, 0u);
    EXPECT_EQ((caches[1].eax >> 14) & 0xFFF, 0u);
    EXPECT_EQ((caches[2].eax >> 14) & 0xFFF, 0u);
    EXPECT_EQ((caches[3].eax >> 14) & 0xFFF, 3u);
    EXPECT_EQ(caches[3].ecx, 0x7FFFu);
    EXPECT_EQ(caches[4].eax, 0u);

    kvm_cpuid_entry2 ext_apic = only(shaped, 0x8000001E);
    EXPECT_EQ(ext_apic.eax, index);  // extended APIC id
    EXPECT_EQ(ext_apic.ebx, index);  // core id, 1 thread per core
    EXPECT_EQ(ext_apic.ecx, 0u);     // node 0, 1 node
    expect_kvm_leaves(shaped);
}

INSTANTIATE_TEST_SUITE_P(CpuIndex, CpuidAmd, testing::Values(0u, 3u));

TEST(Cpuid, SingleCpuClearsHttAndCmpLegacy) {
    Table shaped = shape_cpuid(amd_host(), 0, 1);
    kvm_cpuid_entry2 l1 = only(shaped, 1);
    EXPECT_FALSE(l1.edx & (1u << 28));
    EXPECT_EQ((l1.ebx >> 16) & 0xFF, 1u);
    EXPECT_FALSE(only(shaped, 0x80000001).ecx & (1u << 1));
    EXPECT_EQ(only(shaped, 0x80000008).ecx & 0xF0FF, 0u);
    auto levels = subleaves(shaped, 0xB);
    ASSERT_EQ(levels.size(), 3u);
    EXPECT_EQ(levels[1].eax, 0u);
    EXPECT_EQ(levels[1].ebx, 1u);
}

TEST(Cpuid, ManyCpusSaturateNarrowFields) {
    Table shaped = shape_cpuid(intel_host(), 200, 254);
    EXPECT_EQ(only(shaped, 1).ebx >> 24, 200u);
    EXPECT_EQ((only(shaped, 1).ebx >> 16) & 0xFF, 254u);
    auto caches = subleaves(shaped, 4);
    EXPECT_EQ(caches[0].eax >> 26, 63u);  // a 6-bit field
    EXPECT_EQ((caches[3].eax >> 14) & 0xFFF, 253u);
    EXPECT_EQ(subleaves(shaped, 0xB)[1].eax, 8u);
}

TEST(Cpuid, MissingKvmFeatureLeafIsAddedEmptyAndReported) {
    Table host = intel_host();
    std::erase_if(host, [](const kvm_cpuid_entry2& e) {
        return e.function >= 0x40000000 && e.function < 0x40000100;
    });
    Table shaped = shape_cpuid(host, 0, 2);
    EXPECT_EQ(only(shaped, 0x40000000).eax, 0x40000001u);
    EXPECT_EQ(only(shaped, 0x40000001).eax, 0u);
    EXPECT_FALSE(has_kvm_clock(shaped));
}

TEST(Cpuid, KvmClockNeedsClocksource2) {
    Table host = intel_host();
    EXPECT_TRUE(has_kvm_clock(host));
    for (auto& e : host)
        if (e.function == 0x40000001)
            e.eax &= ~(1u << 3);
    EXPECT_FALSE(has_kvm_clock(host));
}

TEST(Cpuid, VendorFromLeafZero) {
    EXPECT_EQ(cpu_vendor(intel_host()), CpuVendor::Intel);
    EXPECT_EQ(cpu_vendor(amd_host()), CpuVendor::Amd);
    EXPECT_EQ(cpu_vendor(Table{vendor_leaf(0xD, "HygonGenuine")}), CpuVendor::Amd);
    EXPECT_EQ(cpu_vendor(Table{vendor_leaf(0xD, "CentaurHauls")}), CpuVendor::Other);
    EXPECT_EQ(cpu_vendor(Table{}), CpuVendor::Other);
}

TEST(Cpuid, UnknownVendorGetsOnlyTheCommonShaping) {
    Table host = amd_host();
    host[0] = vendor_leaf(0x10, "CentaurHauls");
    Table shaped = shape_cpuid(host, 1, 4);
    EXPECT_EQ(only(shaped, 1).ebx >> 24, 1u);
    EXPECT_EQ(only(shaped, 0x80000008).ecx, 0x0003700Fu);  // AMD leaves untouched
    expect_topology_leaf(shaped, 0xB, 1);
}

}  // namespace
}  // namespace corral::vmm::x86
