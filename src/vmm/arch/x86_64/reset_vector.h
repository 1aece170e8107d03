#pragma once

#include "base/result.h"

namespace corral::vmm {
class GuestMemory;
}

namespace corral::vmm::x86 {

/// Writes a tiny "firmware" at the reset vector (F000:FFF0 = 0xFFFF0) that resets the machine
/// through port 0xCF9. Linux, with hardware-reduced ACPI and no reboot= option, reboots via
/// BOOT_EFI and then BOOT_BIOS: it returns to real mode and jumps to the reset vector, expecting
/// a BIOS there. Without this stub the vCPU would execute zeros forever and `reboot` would hang.
Result<void> write_reset_vector_stub(const GuestMemory& memory);

}  // namespace corral::vmm::x86
