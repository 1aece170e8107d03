#include "vmm/kvm_msi.h"

#include <linux/kvm.h>
#include <sys/eventfd.h>

#include "base/log.h"
#include "vmm/kvm/vm.h"

namespace corral::vmm {

KvmGsiRouting::KvmGsiRouting(const kvm::Vm& vm) : m_vm(vm) {
    // KVM_CHECK_EXTENSION(KVM_CAP_IRQ_ROUTING) answers the number of routes the table may hold.
    int max = vm.check_extension(KVM_CAP_IRQ_ROUTING);
    m_max_routes = max > 0 ? static_cast<uint32_t>(max) : 0;
}

Result<uint32_t> KvmGsiRouting::allocate_gsi() {
    std::lock_guard lock(m_mutex);
    if (m_max_routes == 0) return fail("this KVM has no GSI routing (KVM_CAP_IRQ_ROUTING)");
    // Each GSI below 16 takes two table entries (IOAPIC and PIC), 16-23 one: 40 in all.
    if (40 + (m_next_gsi - k_first_msi_gsi) + 1 > m_max_routes)
        return fail(fmt::format("out of GSI routes ({} allowed)", m_max_routes));
    return m_next_gsi++;
}

Result<void> KvmGsiRouting::set_msi_route(uint32_t gsi, const MsiMessage& message) {
    std::lock_guard lock(m_mutex);
    if (gsi < k_first_msi_gsi || gsi >= m_next_gsi) return fail(fmt::format("GSI {} was not allocated", gsi));
    m_msi_routes[gsi] = message;
    return commit_locked();
}

Result<void> KvmGsiRouting::commit_locked() {
    std::vector<kvm_irq_routing_entry> entries;
    entries.reserve(40 + m_msi_routes.size());
    auto irqchip = [&](uint32_t gsi, uint32_t chip, uint32_t pin) {
        kvm_irq_routing_entry entry{};
        entry.gsi = gsi;
        entry.type = KVM_IRQ_ROUTING_IRQCHIP;
        entry.u.irqchip.irqchip = chip;
        entry.u.irqchip.pin = pin;
        entries.push_back(entry);
    };
    for (uint32_t gsi = 0; gsi < 24; ++gsi) {
        irqchip(gsi, KVM_IRQCHIP_IOAPIC, gsi);
        if (gsi < 16) irqchip(gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, gsi % 8);
    }
    for (const auto& [gsi, message] : m_msi_routes) {
        kvm_irq_routing_entry entry{};
        entry.gsi = gsi;
        entry.type = KVM_IRQ_ROUTING_MSI;
        entry.u.msi.address_lo = static_cast<uint32_t>(message.address);
        entry.u.msi.address_hi = static_cast<uint32_t>(message.address >> 32);
        entry.u.msi.data = message.data;
        entries.push_back(entry);
    }
    return m_vm.set_gsi_routing(entries);
}

Result<std::unique_ptr<KvmMsiVectors>> KvmMsiVectors::create(const kvm::Vm& vm, KvmGsiRouting& routing,
                                                             uint16_t count) {
    std::vector<Vector> vectors;
    vectors.reserve(count);
    for (uint16_t i = 0; i < count; ++i) {
        uint32_t gsi = TRY(routing.allocate_gsi());
        auto irqfd = TRY(EventFd::create(EFD_NONBLOCK));
        TRY_CONTEXT(vm.register_irqfd(irqfd.fd(), gsi), fmt::format("irqfd for GSI {}", gsi));
        vectors.push_back(Vector{gsi, std::move(irqfd)});
    }
    return std::unique_ptr<KvmMsiVectors>(new KvmMsiVectors(routing, std::move(vectors)));
}

void KvmMsiVectors::route(uint16_t vector, const MsiMessage& message) {
    if (vector >= m_vectors.size()) return;
    auto result = m_routing.set_msi_route(m_vectors[vector].gsi, message);
    if (!result && m_route_failures.fetch_add(1) == 0)
        log_error("cannot route MSI vector (GSI {}): {}", m_vectors[vector].gsi, result.error().describe());
}

void KvmMsiVectors::trigger(uint16_t vector) {
    if (vector < m_vectors.size()) m_vectors[vector].irqfd.signal();
}

}  // namespace corral::vmm
