#include "vmm/kvm_interrupt_line.h"

#include "base/log.h"
#include "vmm/kvm/vm.h"

namespace corral::vmm {

void KvmInterruptLine::set_level(bool high) {
    auto result = m_vm.set_irq_line(m_gsi, high);
    if (!result && !m_error_logged.exchange(true))
        log_error("cannot drive IRQ {}: {}", m_gsi, result.error().describe());
}

}  // namespace corral::vmm
