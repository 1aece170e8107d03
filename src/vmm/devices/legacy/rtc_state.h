#pragma once

#include <array>
#include <cstdint>

namespace corral::vmm {
namespace snapshot {
class StateWriter;
class StateReader;
}  // namespace snapshot

/// What an Rtc saves: the index register, CMOS RAM and the guest's offset from the host's UTC
/// time. The clock keeps running across a snapshot: after a restore it reads the host's time
/// plus the same offset, as a battery-backed RTC would. Section "RTC_", version 1.
struct RtcState {
    uint8_t index = 0;
    std::array<uint8_t, 128> cmos{};
    int64_t offset_seconds = 0;

    void encode(snapshot::StateWriter& writer) const;
    static RtcState decode(snapshot::StateReader& reader);
    bool operator==(const RtcState&) const = default;
};

/// What the ACPI sleep registers save: WAK_STS. Section "ACPI", version 1.
struct AcpiSleepState {
    bool wake_status = false;

    void encode(snapshot::StateWriter& writer) const;
    static AcpiSleepState decode(snapshot::StateReader& reader);
    bool operator==(const AcpiSleepState&) const = default;
};

}  // namespace corral::vmm
