#pragma once

#include <array>
#include <cstdint>
#include <vector>

namespace corral::vmm {
namespace snapshot {
class StateWriter;
class StateReader;
}  // namespace snapshot

/// What a PciConfigSpace saves: its 256 bytes. The write masks, BAR kinds and capability layout
/// come from the device's construction and are not saved; restore() checks the saved bytes
/// agree with them where the guest cannot write. Section "PCFG", version 1.
struct PciConfigSpaceState {
    std::array<uint8_t, 256> bytes{};

    void encode(snapshot::StateWriter& writer) const;
    static PciConfigSpaceState decode(snapshot::StateReader& reader);
    bool operator==(const PciConfigSpaceState&) const = default;
};

/// What an MsixTable saves: Message Control's two bits and each vector's table entry and pending
/// bit. Section "MSIX", version 1.
struct MsixState {
    bool enabled = false;
    bool function_masked = false;
    std::vector<std::array<uint8_t, 16>> entries;  // at most MsixTable::k_max_vectors
    std::vector<bool> pending;                     // one per entry

    void encode(snapshot::StateWriter& writer) const;
    static MsixState decode(snapshot::StateReader& reader);
    bool operator==(const MsixState&) const = default;
};

}  // namespace corral::vmm
