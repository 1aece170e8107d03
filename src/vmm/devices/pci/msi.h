#pragma once

#include <cstdint>

namespace corral::vmm {

/// An MSI message: the guest-physical address and data a device writes to interrupt a CPU.
struct MsiMessage {
    uint64_t address = 0;
    uint32_t data = 0;
    bool operator==(const MsiMessage&) const = default;
};

/// Delivers one device's MSI-X vectors to the guest (KVM GSI routes + irqfds in the monitor,
/// a recorder in tests). Vectors are numbered from 0 up to the count the owner was created with.
class MsiVectors {
public:
    virtual ~MsiVectors() = default;
    /// Points `vector` at `message` from now on. Called from vCPU threads (table writes).
    virtual void route(uint16_t vector, const MsiMessage& message) = 0;
    /// Sends `vector`'s message now. Called from any thread (device workers); must not block.
    virtual void trigger(uint16_t vector) = 0;
};

}  // namespace corral::vmm
