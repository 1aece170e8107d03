#include "vmm/devices/legacy/i8042_state.h"

#include "vmm/devices/legacy/ps2_keyboard.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm {

using snapshot::tag;

namespace {

void write_optional(snapshot::StateWriter& w, std::optional<uint8_t> value) {
    w.boolean(value.has_value());
    w.u8(value.value_or(0));
}

std::optional<uint8_t> read_optional(snapshot::StateReader& r) {
    bool present = r.boolean();
    uint8_t value = r.u8();
    return present ? std::optional<uint8_t>(value) : std::nullopt;
}

}  // namespace

void Ps2KeyboardState::encode(snapshot::StateWriter& writer) const {
    writer.section(tag("PS2K"), 1, [&](snapshot::StateWriter& w) {
        w.bytes(queue);
        write_optional(w, pending_command);
        write_optional(w, last_sent);
        w.boolean(scanning);
        w.u8(leds);
        w.u8(typematic);
        w.u8(scancode_set);
    });
}

Ps2KeyboardState Ps2KeyboardState::decode(snapshot::StateReader& reader) {
    Ps2KeyboardState state;
    reader.section(tag("PS2K"), 1, [&](snapshot::StateReader& r, uint16_t) {
        state.queue = r.bytes(Ps2Keyboard::k_queue_capacity);
        state.pending_command = read_optional(r);
        state.last_sent = read_optional(r);
        state.scanning = r.boolean();
        state.leds = r.u8();
        state.typematic = r.u8();
        state.scancode_set = r.u8();
    });
    return state;
}

void I8042State::encode(snapshot::StateWriter& writer) const {
    writer.section(tag("I842"), 1, [&](snapshot::StateWriter& w) {
        w.fixed_bytes(ram);
        w.boolean(output.has_value());
        OutputByte byte = output.value_or(OutputByte{});
        w.u8(byte.value);
        w.boolean(byte.aux);
        w.boolean(byte.timeout);
        w.u8(output_port);
        w.u8(last_data);
        w.u8(pending_command);
        w.boolean(last_write_was_command);
        w.boolean(system_flag);
        keyboard.encode(w);
    });
}

I8042State I8042State::decode(snapshot::StateReader& reader) {
    I8042State state;
    reader.section(tag("I842"), 1, [&](snapshot::StateReader& r, uint16_t) {
        r.fixed_bytes(state.ram);
        bool has_output = r.boolean();
        OutputByte byte;
        byte.value = r.u8();
        byte.aux = r.boolean();
        byte.timeout = r.boolean();
        if (has_output)
            state.output = byte;
        state.output_port = r.u8();
        state.last_data = r.u8();
        state.pending_command = r.u8();
        state.last_write_was_command = r.boolean();
        state.system_flag = r.boolean();
        state.keyboard = Ps2KeyboardState::decode(r);
    });
    return state;
}

}  // namespace corral::vmm
