#include "vmm/snapshot/cpu_compat.h"

#include <array>
#include <cstdint>

#include <fmt/format.h>

namespace corral::vmm::snapshot {
namespace {

enum Register { Eax, Ebx, Ecx, Edx };

struct FeatureWord {
    uint32_t function;
    uint32_t index;
    Register reg;
    uint32_t mask;  // the bits that are features (run-time bits cleared)
};

constexpr std::array<FeatureWord, 9> k_feature_words = {{
    {0x1, 0, Ecx, ~(1u << 27)},  // OSXSAVE follows CR4
    {0x1, 0, Edx, ~(1u << 9)},   // APIC follows IA32_APIC_BASE
    {0x7, 0, Ebx, ~0u},
    {0x7, 0, Ecx, ~(1u << 4)},  // OSPKE follows CR4
    {0x7, 0, Edx, ~0u},
    {0xD, 1, Eax, ~0u},
    {0x80000001, 0, Ecx, ~0u},
    {0x80000001, 0, Edx, ~0u},
    {0x40000001, 0, Eax, ~0u},  // KVM paravirtual features
}};

const kvm_cpuid_entry2* find(std::span<const kvm_cpuid_entry2> entries, uint32_t function, uint32_t index) {
    for (const auto& entry : entries) {
        bool indexed = entry.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
        if (entry.function == function && (!indexed || entry.index == index)) return &entry;
    }
    return nullptr;
}

uint32_t value(const kvm_cpuid_entry2& entry, Register reg) {
    switch (reg) {
        case Eax: return entry.eax;
        case Ebx: return entry.ebx;
        case Ecx: return entry.ecx;
        case Edx: return entry.edx;
    }
    return 0;
}

const char* name(Register reg) {
    constexpr std::array<const char*, 4> names = {"EAX", "EBX", "ECX", "EDX"};
    return names[reg];
}

}  // namespace

std::vector<std::string> missing_cpu_features(std::span<const kvm_cpuid_entry2> saved,
                                              std::span<const kvm_cpuid_entry2> available) {
    std::vector<std::string> missing;
    for (const FeatureWord& word : k_feature_words) {
        const kvm_cpuid_entry2* had = find(saved, word.function, word.index);
        if (!had) continue;
        const kvm_cpuid_entry2* here = find(available, word.function, word.index);
        uint32_t lacking = value(*had, word.reg) & word.mask & ~(here ? value(*here, word.reg) : 0);
        for (int bit = 0; bit < 32; ++bit)
            if (lacking & (1u << bit))
                missing.push_back(fmt::format("CPUID 0x{:x}.{} {} bit {}", word.function, word.index, name(word.reg), bit));
    }
    return missing;
}

}  // namespace corral::vmm::snapshot
