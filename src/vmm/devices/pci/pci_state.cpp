#include "vmm/devices/pci/pci_state.h"

#include "vmm/devices/pci/msix.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm {

using snapshot::tag;

void PciConfigSpaceState::encode(snapshot::StateWriter& writer) const {
    writer.section(tag("PCFG"), 1, [&](snapshot::StateWriter& w) { w.fixed_bytes(bytes); });
}

PciConfigSpaceState PciConfigSpaceState::decode(snapshot::StateReader& reader) {
    PciConfigSpaceState state;
    reader.section(tag("PCFG"), 1,
                   [&](snapshot::StateReader& r, uint16_t) { r.fixed_bytes(state.bytes); });
    return state;
}

void MsixState::encode(snapshot::StateWriter& writer) const {
    writer.section(tag("MSIX"), 1, [&](snapshot::StateWriter& w) {
        w.boolean(enabled);
        w.boolean(function_masked);
        w.u16(static_cast<uint16_t>(entries.size()));
        for (size_t i = 0; i < entries.size(); ++i) {
            w.fixed_bytes(entries[i]);
            w.boolean(i < pending.size() && pending[i]);
        }
    });
}

MsixState MsixState::decode(snapshot::StateReader& reader) {
    MsixState state;
    reader.section(tag("MSIX"), 1, [&](snapshot::StateReader& r, uint16_t) {
        state.enabled = r.boolean();
        state.function_masked = r.boolean();
        uint16_t count = r.u16();
        if (count > MsixTable::k_max_vectors)
            return r.fail("more MSI-X vectors than a table has");
        // Bounded by the count check and, per entry, by the bytes that are really there.
        for (uint16_t i = 0; i < count && r.ok(); ++i) {
            std::array<uint8_t, 16> entry{};
            r.fixed_bytes(entry);
            state.entries.push_back(entry);
            state.pending.push_back(r.boolean());
        }
    });
    return state;
}

}  // namespace corral::vmm
