// libFuzzer target for the 16550A UART: every register access is guest input, and host input
// arrives from another thread at any moment. The input is a program of 4-byte operations
// (kind, offset, width, value); the device must never crash, hold more received bytes than
// its capacity, or drive its interrupt line with a level it did not change.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "vmm/devices/legacy/serial.h"

namespace {

struct CheckedLine final : corral::vmm::InterruptLine {
    void set_level(bool high) override {
        if (high == level)
            std::abort();  // the device reports changes only
        level = high;
    }
    bool level = false;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace corral::vmm;
    CheckedLine irq;
    size_t transmitted = 0;
    Serial serial(&irq, [&](std::span<const uint8_t> bytes) { transmitted += bytes.size(); });
    for (size_t at = 0; at + 4 <= size; at += 4) {
        uint8_t kind = data[at] % 4;
        uint64_t offset = data[at + 1] % 12;  // the 8 registers and a little past them
        size_t width = size_t{1} << (data[at + 2] % 4);
        uint8_t bytes[8];
        for (size_t i = 0; i < sizeof bytes; ++i)
            bytes[i] = static_cast<uint8_t>(data[at + 3] + i);
        switch (kind) {
            case 0:
                serial.read(offset, std::span<uint8_t>(bytes, width));
                break;
            case 1:
                serial.write(offset, std::span<const uint8_t>(bytes, width));
                break;
            case 2: {
                // Host input of up to 255 bytes.
                static uint8_t input[255];
                serial.enqueue_input(std::span<const uint8_t>(input, data[at + 3]));
                break;
            }
            default:
                serial.read(5, std::span<uint8_t>(bytes, 1));  // LSR, as a polling driver does
                break;
        }
        if (serial.input_space() > Serial::k_input_capacity)
            std::abort();
    }
    auto counters = serial.counters();
    if (counters.tx_bytes != transmitted)
        std::abort();
    return 0;
}
