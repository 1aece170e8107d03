#pragma once

#include <atomic>
#include <cstdint>

#include "vmm/devices/bus_device.h"

namespace corral::vmm {

namespace kvm {
class Vm;
}

/// An ISA interrupt line on KVM's in-kernel PIC and IOAPIC (KVM_IRQ_LINE on one GSI).
class KvmInterruptLine final : public InterruptLine {
public:
    KvmInterruptLine(const kvm::Vm& vm, uint32_t gsi) : m_vm(vm), m_gsi(gsi) {}
    void set_level(bool high) override;

private:
    const kvm::Vm& m_vm;
    uint32_t m_gsi;
    std::atomic<bool> m_error_logged{false};
};

}  // namespace corral::vmm
