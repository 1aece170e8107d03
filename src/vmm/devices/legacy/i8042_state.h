#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

namespace corral::vmm {
namespace snapshot {
class StateWriter;
class StateReader;
}  // namespace snapshot

/// What a Ps2Keyboard saves: its queue (oldest first) and its settings. Section "PS2K", v1.
struct Ps2KeyboardState {
    std::vector<uint8_t> queue;  // at most Ps2Keyboard::k_queue_capacity
    std::optional<uint8_t> pending_command;
    std::optional<uint8_t> last_sent;
    bool scanning = true;
    uint8_t leds = 0;
    uint8_t typematic = 0;
    uint8_t scancode_set = 2;

    void encode(snapshot::StateWriter& writer) const;
    static Ps2KeyboardState decode(snapshot::StateReader& reader);
    bool operator==(const Ps2KeyboardState&) const = default;
};

/// What an I8042 saves: controller RAM, the output buffer, the output port, the command in
/// progress, and its keyboard. Section "I842", version 1.
struct I8042State {
    struct OutputByte {
        uint8_t value = 0;
        bool aux = false;
        bool timeout = false;
        bool operator==(const OutputByte&) const = default;
    };
    std::array<uint8_t, 32> ram{};
    std::optional<OutputByte> output;
    uint8_t output_port = 0;
    uint8_t last_data = 0;
    uint8_t pending_command = 0;
    bool last_write_was_command = false;
    bool system_flag = true;
    Ps2KeyboardState keyboard;

    void encode(snapshot::StateWriter& writer) const;
    static I8042State decode(snapshot::StateReader& reader);
    bool operator==(const I8042State&) const = default;
};

}  // namespace corral::vmm
