#pragma once

#include <cstdint>
#include <vector>

namespace corral::vmm {
namespace snapshot {
class StateWriter;
class StateReader;
}  // namespace snapshot

/// What a Serial saves in a snapshot: its registers and the bytes the guest has not read yet.
/// Counters stay with the monitor that counted them. Section "SERL", version 1.
struct SerialState {
    uint8_t ier = 0, fcr = 0, lcr = 0, mcr = 0, scr = 0, dll = 0x0C, dlm = 0;
    uint8_t rbr = 0, lsr_errors = 0, msr_deltas = 0;
    bool thre_pending = false;
    std::vector<uint8_t> rx_fifo;  // at most Serial::k_fifo_size
    std::vector<uint8_t> input;    // waiting for FIFO room; FIFO + input fit k_input_capacity

    void encode(snapshot::StateWriter& writer) const;
    /// Reads a section written by encode(); errors are recorded in the reader.
    static SerialState decode(snapshot::StateReader& reader);
    bool operator==(const SerialState&) const = default;
};

}  // namespace corral::vmm
