// Seeds for serial_fuzz: register programs as Linux's 8250 driver runs them (probe, set the
// baud rate, enable FIFOs and interrupts, transmit, take input).
#include "../smoke_driver.h"

namespace corral::fuzz {

namespace {

enum Kind : uint8_t { Read = 0, Write = 1, HostInput = 2, PollLsr = 3 };

struct Program {
    Input bytes;
    void op(Kind kind, uint8_t offset, uint8_t value) { bytes.insert(bytes.end(), {kind, offset, 0, value}); }
};

}  // namespace

std::vector<Input> make_seeds() {
    Program setup;
    setup.op(Write, 3, 0x80);  // LCR: DLAB
    setup.op(Write, 0, 0x01);  // DLL: 115200 baud
    setup.op(Write, 1, 0x00);  // DLM
    setup.op(Write, 3, 0x03);  // LCR: 8N1
    setup.op(Write, 2, 0xc7);  // FCR: enable and clear FIFOs
    setup.op(Write, 4, 0x0b);  // MCR: DTR, RTS, OUT2
    setup.op(Write, 1, 0x0f);  // IER: all interrupts
    setup.op(Read, 2, 0);      // IIR
    for (uint8_t c : {'h', 'i', '\n'}) {
        setup.op(PollLsr, 5, 0);
        setup.op(Write, 0, c);  // THR
    }
    Program input = setup;
    input.op(HostInput, 0, 40);  // 40 bytes of host input
    for (int i = 0; i < 8; ++i) {
        input.op(Read, 2, 0);  // IIR: receive data available
        input.op(Read, 0, 0);  // RBR
    }
    input.op(Write, 1, 0x00);  // IER off
    input.op(Read, 6, 0);      // MSR
    input.op(Read, 7, 0);      // scratch
    return {setup.bytes, input.bytes};
}

}  // namespace corral::fuzz
