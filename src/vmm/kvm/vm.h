#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::vmm::kvm {

class Vcpu;

/// Whether an ioeventfd matches a written value or any value.
enum class IoEventMatch { AnyValue, Value };
/// The address space an ioeventfd listens on.
enum class IoSpace { Pio, Mmio };

/// One KVM virtual machine (the fd KVM_CREATE_VM returns). One method per VM ioctl.
class Vm {
public:
    Vm(UniqueFd fd, size_t vcpu_run_size) : m_fd(std::move(fd)), m_vcpu_run_size(vcpu_run_size) {}

    int fd() const { return m_fd.get(); }
    int check_extension(long capability) const;

    /// KVM_SET_USER_MEMORY_REGION: maps host memory at `host_address` as guest RAM.
    Result<void> set_user_memory_region(uint32_t slot, uint64_t guest_address, uint64_t size,
                                        void* host_address, uint32_t flags = 0) const;
    /// KVM_GET_DIRTY_LOG: which pages of memory slot `slot` (of `pages` pages) were written since
    /// the last call, one bit per page (bit 0: the slot's first page), 64 per word; KVM clears
    /// them as it answers. The slot must have been set with KVM_MEM_LOG_DIRTY_PAGES.
    Result<std::vector<uint64_t>> dirty_log(uint32_t slot, uint64_t pages) const;
    /// KVM_SET_TSS_ADDR: three pages of guest-physical space KVM needs on Intel (unused by SVM).
    Result<void> set_tss_address(uint64_t address) const;
    /// KVM_SET_IDENTITY_MAP_ADDR: one page KVM needs on Intel for real mode under EPT.
    Result<void> set_identity_map_address(uint64_t address) const;
    /// KVM_CREATE_IRQCHIP: in-kernel PIC, IOAPIC and LAPICs.
    Result<void> create_irqchip() const;
    /// KVM_CREATE_PIT2: in-kernel i8254 timer.
    Result<void> create_pit2() const;
    /// KVM_IRQ_LINE: drives a GSI (ISA IRQ) to `level`.
    Result<void> set_irq_line(uint32_t gsi, bool level) const;
    /// KVM_IOEVENTFD: `event_fd` is signalled when the guest writes to the address.
    Result<void> register_ioeventfd(int event_fd, uint64_t address, uint32_t length, IoSpace space,
                                    IoEventMatch match = IoEventMatch::AnyValue,
                                    uint64_t value = 0) const;
    /// KVM_IRQFD: signalling `event_fd` injects `gsi`.
    Result<void> register_irqfd(int event_fd, uint32_t gsi) const;
    /// KVM_SET_GSI_ROUTING: replaces the whole GSI routing table (including the default ISA
    /// routes KVM_CREATE_IRQCHIP installed, so callers must repeat those).
    Result<void> set_gsi_routing(std::span<const kvm_irq_routing_entry> entries) const;
    /// KVM_GET_CLOCK / KVM_SET_CLOCK.
    Result<kvm_clock_data> clock() const;
    Result<void> set_clock(const kvm_clock_data& clock) const;
    /// KVM_GET_IRQCHIP / KVM_SET_IRQCHIP for one chip (KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE,
    /// _IOAPIC).
    Result<kvm_irqchip> irqchip(uint32_t chip_id) const;
    Result<void> set_irqchip(const kvm_irqchip& chip) const;
    /// KVM_GET_PIT2 / KVM_SET_PIT2.
    Result<kvm_pit_state2> pit2() const;
    Result<void> set_pit2(const kvm_pit_state2& state) const;
    /// KVM_CREATE_VCPU.
    Result<Vcpu> create_vcpu(uint32_t id) const;

private:
    UniqueFd m_fd;
    size_t m_vcpu_run_size;
};

}  // namespace corral::vmm::kvm
