#include "vmm/arch/x86_64/reset_vector.h"

#include <array>
#include <cstdint>

#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/ports.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm::x86 {

Result<void> write_reset_vector_stub(const GuestMemory& memory) {
    static_assert(k_reset_control_port == 0xCF9 && k_reset_control_value == 0x06);
    // 16-bit real-mode code.
    constexpr std::array<uint8_t, 9> k_stub = {
        0xBA, 0xF9, 0x0C,  // mov dx, 0x0CF9
        0xB0, 0x06,        // mov al, 0x06 (RST_CPU | SYS_RST)
        0xEE,              // out dx, al
        0xF4,              // hlt
        0xEB, 0xFD,        // jmp back to hlt
    };
    static_assert(k_reset_vector_address + k_stub.size() <= k_bios_area_end);
    return memory.write(k_reset_vector_address, k_stub);
}

}  // namespace corral::vmm::x86
