#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "base/event_fd.h"
#include "base/result.h"
#include "vmm/devices/pci/msi.h"

namespace corral::vmm {

namespace kvm {
class Vm;
}

/// The VM's GSI routing table (KVM_SET_GSI_ROUTING). KVM_CREATE_IRQCHIP installs default routes
/// for GSIs 0-23; setting a table replaces all of it, so every commit repeats those defaults
/// (GSIs 0-15 to the IOAPIC pin of the same number and to the master/slave PIC, 16-23 to the
/// IOAPIC only, as arch/x86/kvm/irq_comm.c sets them up) before the MSI routes, which take
/// GSIs from 24 on.
///
/// Thread safety: one mutex; routes change from vCPU threads (MSI-X table writes).
class KvmGsiRouting {
public:
    explicit KvmGsiRouting(const kvm::Vm& vm);

    /// A fresh GSI for an MSI route (not routed until set_msi_route()).
    Result<uint32_t> allocate_gsi();
    /// Points `gsi` at `message` and commits the whole table.
    Result<void> set_msi_route(uint32_t gsi, const MsiMessage& message);

    static constexpr uint32_t k_first_msi_gsi = 24;

private:
    Result<void> commit_locked();

    const kvm::Vm& m_vm;
    uint32_t m_max_routes;
    std::mutex m_mutex;
    uint32_t m_next_gsi = k_first_msi_gsi;
    std::map<uint32_t, MsiMessage> m_msi_routes;
};

/// One device's MSI-X vectors on KVM: an irqfd per vector, bound to a GSI of its own whose route
/// is the vector's message. trigger() signals the eventfd: KVM injects the interrupt without a
/// trip through the vCPU thread.
class KvmMsiVectors final : public MsiVectors {
public:
    static Result<std::unique_ptr<KvmMsiVectors>> create(const kvm::Vm& vm, KvmGsiRouting& routing,
                                                         uint16_t count);
    void route(uint16_t vector, const MsiMessage& message) override;
    void trigger(uint16_t vector) override;
    uint64_t route_failures() const { return m_route_failures.load(); }

private:
    struct Vector {
        uint32_t gsi;
        EventFd irqfd;
    };
    KvmMsiVectors(KvmGsiRouting& routing, std::vector<Vector> vectors)
        : m_routing(routing), m_vectors(std::move(vectors)) {}

    KvmGsiRouting& m_routing;
    std::vector<Vector> m_vectors;
    std::atomic<uint64_t> m_route_failures{0};
};

}  // namespace corral::vmm
