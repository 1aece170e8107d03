#include "vmm/devices/legacy/rtc_state.h"

#include "vmm/snapshot/state_stream.h"

namespace corral::vmm {

using snapshot::tag;

void RtcState::encode(snapshot::StateWriter& writer) const {
    writer.section(tag("RTC_"), 1, [&](snapshot::StateWriter& w) {
        w.u8(index);
        w.fixed_bytes(cmos);
        w.i64(offset_seconds);
    });
}

RtcState RtcState::decode(snapshot::StateReader& reader) {
    RtcState state;
    reader.section(tag("RTC_"), 1, [&](snapshot::StateReader& r, uint16_t) {
        state.index = r.u8();
        r.fixed_bytes(state.cmos);
        state.offset_seconds = r.i64();
    });
    return state;
}

void AcpiSleepState::encode(snapshot::StateWriter& writer) const {
    writer.section(tag("ACPI"), 1, [&](snapshot::StateWriter& w) { w.boolean(wake_status); });
}

AcpiSleepState AcpiSleepState::decode(snapshot::StateReader& reader) {
    AcpiSleepState state;
    reader.section(tag("ACPI"), 1,
                   [&](snapshot::StateReader& r, uint16_t) { state.wake_status = r.boolean(); });
    return state;
}

}  // namespace corral::vmm
