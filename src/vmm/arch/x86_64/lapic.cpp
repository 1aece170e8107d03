#include "vmm/arch/x86_64/lapic.h"

#include <cstdint>
#include <cstring>

namespace corral::vmm::x86 {
namespace {

constexpr size_t k_apic_lvt0 = 0x350;
constexpr size_t k_apic_lvt1 = 0x360;
constexpr uint32_t k_delivery_mode_mask = 0x700;
constexpr uint32_t k_delivery_nmi = 0x400;
constexpr uint32_t k_delivery_extint = 0x700;

uint32_t read_register(const kvm_lapic_state& lapic, size_t offset) {
    uint32_t value;
    std::memcpy(&value, lapic.regs + offset, sizeof value);
    return value;
}

void write_register(kvm_lapic_state& lapic, size_t offset, uint32_t value) {
    std::memcpy(lapic.regs + offset, &value, sizeof value);
}

}  // namespace

void set_virtual_wire_mode(kvm_lapic_state& lapic) {
    uint32_t lvt0 = read_register(lapic, k_apic_lvt0);
    write_register(lapic, k_apic_lvt0, (lvt0 & ~k_delivery_mode_mask) | k_delivery_extint);
    uint32_t lvt1 = read_register(lapic, k_apic_lvt1);
    write_register(lapic, k_apic_lvt1, (lvt1 & ~k_delivery_mode_mask) | k_delivery_nmi);
}

}  // namespace corral::vmm::x86
