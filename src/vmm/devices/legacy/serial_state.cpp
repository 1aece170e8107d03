#include "vmm/devices/legacy/serial_state.h"

#include "vmm/devices/legacy/serial.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm {

using snapshot::tag;

void SerialState::encode(snapshot::StateWriter& writer) const {
    writer.section(tag("SERL"), 1, [&](snapshot::StateWriter& w) {
        for (uint8_t value : {ier, fcr, lcr, mcr, scr, dll, dlm, rbr, lsr_errors, msr_deltas})
            w.u8(value);
        w.boolean(thre_pending);
        w.bytes(rx_fifo);
        w.bytes(input);
    });
}

SerialState SerialState::decode(snapshot::StateReader& reader) {
    SerialState state;
    reader.section(tag("SERL"), 1, [&](snapshot::StateReader& r, uint16_t) {
        for (uint8_t* value : {&state.ier, &state.fcr, &state.lcr, &state.mcr, &state.scr,
                               &state.dll, &state.dlm, &state.rbr, &state.lsr_errors,
                               &state.msr_deltas})
            *value = r.u8();
        state.thre_pending = r.boolean();
        state.rx_fifo = r.bytes(Serial::k_fifo_size);
        state.input = r.bytes(Serial::k_input_capacity);
    });
    return state;
}

}  // namespace corral::vmm
