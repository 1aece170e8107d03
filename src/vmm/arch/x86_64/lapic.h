#pragma once

#include <linux/kvm.h>

/// The local APIC's boot configuration.
namespace corral::vmm::x86 {

/// Puts the LAPIC in virtual-wire mode: LVT0 delivers ExtINT (the PIC's INTR), LVT1 delivers NMI.
/// Linux expects the firmware to leave it so (Intel MP spec §3.6.2.2), else the timer never fires.
void set_virtual_wire_mode(kvm_lapic_state& lapic);

}  // namespace corral::vmm::x86
