#include "vmm/arch/x86_64/lapic.h"

#include <gtest/gtest.h>

#include <cstring>

namespace corral::vmm::x86 {
namespace {

uint32_t reg(const kvm_lapic_state& state, size_t offset) {
    uint32_t value;
    std::memcpy(&value, state.regs + offset, 4);
    return value;
}

TEST(Lapic, VirtualWireSetsExtIntAndNmi) {
    kvm_lapic_state state{};
    uint32_t masked = 0x10000 | 0x100;  // masked, fixed-mode garbage in the delivery field
    std::memcpy(state.regs + 0x350, &masked, 4);
    std::memcpy(state.regs + 0x360, &masked, 4);
    set_virtual_wire_mode(state);
    EXPECT_EQ(reg(state, 0x350) & 0x700, 0x700u);
    EXPECT_EQ(reg(state, 0x360) & 0x700, 0x400u);
    EXPECT_EQ(reg(state, 0x350) & 0x10000, 0x10000u) << "other bits are kept";
}

}  // namespace
}  // namespace corral::vmm::x86
