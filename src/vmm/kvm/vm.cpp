#include "vmm/kvm/vm.h"

#include <sys/ioctl.h>

#include "base/mapping.h"
#include "vmm/kvm/variable_size_ioctls.h"
#include "vmm/kvm/vcpu.h"

namespace corral::vmm::kvm {

int Vm::check_extension(long capability) const {
    int result = ::ioctl(m_fd.get(), KVM_CHECK_EXTENSION, capability);
    return result < 0 ? 0 : result;
}

Result<void> Vm::set_user_memory_region(uint32_t slot, uint64_t guest_address, uint64_t size,
                                        void* host_address, uint32_t flags) const {
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.flags = flags;
    region.guest_phys_addr = guest_address;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<uint64_t>(host_address);
    if (::ioctl(m_fd.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return fail_errno("KVM_SET_USER_MEMORY_REGION");
    return {};
}

Result<std::vector<uint64_t>> Vm::dirty_log(uint32_t slot, uint64_t pages) const {
    // KVM copies a bitmap of whole longs (api.rst, KVM_GET_DIRTY_LOG).
    std::vector<uint64_t> bitmap((pages + 63) / 64);
    kvm_dirty_log log{};
    log.slot = slot;
    log.dirty_bitmap = bitmap.data();
    if (::ioctl(m_fd.get(), KVM_GET_DIRTY_LOG, &log) < 0) return fail_errno("KVM_GET_DIRTY_LOG");
    return bitmap;
}

Result<void> Vm::set_tss_address(uint64_t address) const {
    if (::ioctl(m_fd.get(), KVM_SET_TSS_ADDR, address) < 0) return fail_errno("KVM_SET_TSS_ADDR");
    return {};
}

Result<void> Vm::set_identity_map_address(uint64_t address) const {
    if (::ioctl(m_fd.get(), KVM_SET_IDENTITY_MAP_ADDR, &address) < 0)
        return fail_errno("KVM_SET_IDENTITY_MAP_ADDR");
    return {};
}

Result<void> Vm::create_irqchip() const {
    if (::ioctl(m_fd.get(), KVM_CREATE_IRQCHIP, 0) < 0) return fail_errno("KVM_CREATE_IRQCHIP");
    return {};
}

Result<void> Vm::create_pit2() const {
    kvm_pit_config config{};
    // Despite its name, KVM_PIT_SPEAKER_DUMMY makes KVM register its port 0x61 device (PIT
    // channel 2 gate and output, refresh toggle), which Linux polls while calibrating the TSC.
    // Without it, port 0x61 exits to user space.
    config.flags = KVM_PIT_SPEAKER_DUMMY;
    if (::ioctl(m_fd.get(), KVM_CREATE_PIT2, &config) < 0) return fail_errno("KVM_CREATE_PIT2");
    return {};
}

Result<void> Vm::set_irq_line(uint32_t gsi, bool level) const {
    kvm_irq_level irq{};
    irq.irq = gsi;
    irq.level = level ? 1 : 0;
    if (::ioctl(m_fd.get(), KVM_IRQ_LINE, &irq) < 0) return fail_errno("KVM_IRQ_LINE");
    return {};
}

Result<void> Vm::register_ioeventfd(int event_fd, uint64_t address, uint32_t length,
                                    IoSpace space, IoEventMatch match, uint64_t value) const {
    kvm_ioeventfd request{};
    request.addr = address;
    request.len = length;
    request.fd = event_fd;
    request.datamatch = value;
    if (space == IoSpace::Pio) request.flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (match == IoEventMatch::Value) request.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
    if (::ioctl(m_fd.get(), KVM_IOEVENTFD, &request) < 0) return fail_errno("KVM_IOEVENTFD");
    return {};
}

Result<void> Vm::register_irqfd(int event_fd, uint32_t gsi) const {
    kvm_irqfd request{};
    request.fd = static_cast<uint32_t>(event_fd);
    request.gsi = gsi;
    if (::ioctl(m_fd.get(), KVM_IRQFD, &request) < 0) return fail_errno("KVM_IRQFD");
    return {};
}

Result<void> Vm::set_gsi_routing(std::span<const kvm_irq_routing_entry> entries) const {
    VariableSizeBuffer<IrqRoutingHeader, kvm_irq_routing_entry> buffer(entries.size());
    buffer.header()->nr = static_cast<uint32_t>(entries.size());
    buffer.header()->flags = 0;
    buffer.set_entries(entries);
    if (::ioctl(m_fd.get(), k_ioctl_set_gsi_routing, buffer.data()) < 0)
        return fail_errno("KVM_SET_GSI_ROUTING");
    return {};
}

Result<kvm_clock_data> Vm::clock() const {
    kvm_clock_data data{};
    if (::ioctl(m_fd.get(), KVM_GET_CLOCK, &data) < 0) return fail_errno("KVM_GET_CLOCK");
    return data;
}

Result<void> Vm::set_clock(const kvm_clock_data& clock) const {
    kvm_clock_data data = clock;
    if (::ioctl(m_fd.get(), KVM_SET_CLOCK, &data) < 0) return fail_errno("KVM_SET_CLOCK");
    return {};
}

Result<kvm_irqchip> Vm::irqchip(uint32_t chip_id) const {
    kvm_irqchip chip{};
    chip.chip_id = chip_id;
    if (::ioctl(m_fd.get(), KVM_GET_IRQCHIP, &chip) < 0) return fail_errno("KVM_GET_IRQCHIP");
    return chip;
}

Result<void> Vm::set_irqchip(const kvm_irqchip& chip) const {
    kvm_irqchip copy = chip;
    if (::ioctl(m_fd.get(), KVM_SET_IRQCHIP, &copy) < 0) return fail_errno("KVM_SET_IRQCHIP");
    return {};
}

Result<kvm_pit_state2> Vm::pit2() const {
    kvm_pit_state2 state{};
    if (::ioctl(m_fd.get(), KVM_GET_PIT2, &state) < 0) return fail_errno("KVM_GET_PIT2");
    return state;
}

Result<void> Vm::set_pit2(const kvm_pit_state2& state) const {
    kvm_pit_state2 copy = state;
    if (::ioctl(m_fd.get(), KVM_SET_PIT2, &copy) < 0) return fail_errno("KVM_SET_PIT2");
    return {};
}

Result<Vcpu> Vm::create_vcpu(uint32_t id) const {
    int fd = ::ioctl(m_fd.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
    if (fd < 0) return fail_errno("KVM_CREATE_VCPU " + std::to_string(id));
    UniqueFd owned(fd);
    auto run = TRY_CONTEXT(Mapping::shared_file(fd, m_vcpu_run_size), "mapping kvm_run");
    return Vcpu(std::move(owned), std::move(run), id);
}

}  // namespace corral::vmm::kvm
