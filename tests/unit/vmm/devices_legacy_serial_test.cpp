#include "vmm/devices/legacy/serial.h"

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace corral::vmm {
namespace {

// Register offsets and bits as a guest driver names them (Linux's serial_reg.h).
constexpr uint64_t RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4,
                   LSR = 5, MSR = 6, SCR = 7;
constexpr uint8_t IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08;
constexpr uint8_t IIR_NO_INT = 0x01, IIR_MSI = 0x00, IIR_THRI = 0x02, IIR_RDI = 0x04,
                  IIR_RLSI = 0x06, IIR_FIFOS = 0xC0;
constexpr uint8_t FCR_ENABLE = 0x01, FCR_CLEAR_RCVR = 0x02;
constexpr uint8_t LCR_DLAB = 0x80, LCR_WLEN8 = 0x03;
constexpr uint8_t MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08, MCR_LOOP = 0x10;
constexpr uint8_t LSR_DR = 0x01, LSR_OE = 0x02, LSR_THRE = 0x20, LSR_TEMT = 0x40;
constexpr uint8_t MSR_DCTS = 0x01, MSR_DDSR = 0x02, MSR_CTS = 0x10, MSR_DSR = 0x20, MSR_RI = 0x40,
                  MSR_DCD = 0x80;

/// Records what the device does with its interrupt line.
struct RecordingLine final : InterruptLine {
    void set_level(bool high) override {
        if (high && !level)
            rising_edges++;
        level = high;
    }
    bool level = false;
    int rising_edges = 0;
};

class SerialTest : public ::testing::Test {
protected:
    uint8_t in(uint64_t offset) {
        uint8_t value = 0;
        serial.read(offset, std::span<uint8_t>(&value, 1));
        return value;
    }
    void out(uint64_t offset, uint8_t value) {
        serial.write(offset, std::span<const uint8_t>(&value, 1));
    }
    size_t enqueue(const std::string& text) {
        return serial.enqueue_input(
            std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    }
    std::string read_received() {
        std::string text;
        while (in(LSR)&LSR_DR)
            text.push_back(static_cast<char>(in(RBR)));
        return text;
    }

    RecordingLine irq;
    std::string output;
    int space_callbacks = 0;
    Serial serial{
        &irq, [this](std::span<const uint8_t> bytes) { output.append(bytes.begin(), bytes.end()); },
        [this] { space_callbacks++; }};
};

TEST_F(SerialTest, TransmittedBytesReachTheOutputSink) {
    out(LCR, LCR_WLEN8);
    for (char c : std::string("hello\n"))
        out(THR, static_cast<uint8_t>(c));
    EXPECT_EQ(output, "hello\n");
    EXPECT_EQ(serial.counters().tx_bytes, 6u);
}

TEST_F(SerialTest, LineStatusAfterReset) {
    // Transmitter idle, nothing received: THRE and TEMT only.
    EXPECT_EQ(in(LSR), LSR_THRE | LSR_TEMT);
    EXPECT_EQ(in(IIR), IIR_NO_INT);
    EXPECT_EQ(in(IER), 0);
    EXPECT_EQ(in(LCR), 0);
    EXPECT_EQ(in(MCR), 0);
}

TEST_F(SerialTest, DivisorLatchSharesOffsetsZeroAndOne) {
    out(IER, IER_RDI);
    out(LCR, LCR_DLAB | LCR_WLEN8);
    out(DLL, 0x01);
    out(DLM, 0x02);
    EXPECT_EQ(in(DLL), 0x01);
    EXPECT_EQ(in(DLM), 0x02);
    EXPECT_TRUE(output.empty()) << "a DLL write is not a transmitted byte";
    EXPECT_EQ(in(IIR), IIR_NO_INT) << "IIR is at offset 2 whatever DLAB says";

    out(LCR, LCR_WLEN8);
    EXPECT_EQ(in(IER), IER_RDI) << "IER kept its value behind the divisor latch";
    out(THR, 'x');
    EXPECT_EQ(output, "x");

    out(LCR, LCR_DLAB | LCR_WLEN8);
    EXPECT_EQ(in(DLL), 0x01);
    EXPECT_EQ(in(DLM), 0x02);
}

TEST_F(SerialTest, LoopbackSendsThrToRbrAndNotToTheSink) {
    out(FCR, FCR_ENABLE);
    out(MCR, MCR_LOOP);
    out(THR, 'a');
    out(THR, 'b');
    EXPECT_TRUE(output.empty());
    EXPECT_EQ(serial.counters().tx_bytes, 0u);
    EXPECT_EQ(read_received(), "ab");
}

TEST_F(SerialTest, LoopbackMirrorsModemControlOutputsToModemStatus) {
    // Linux's autoconfig check: MCR = LOOP | RTS | OUT2 must read back CTS | DCD (0x90).
    out(MCR, MCR_LOOP | MCR_RTS | MCR_OUT2);
    EXPECT_EQ(in(MSR)&0xF0, MSR_CTS | MSR_DCD);
    out(MCR, MCR_LOOP | MCR_DTR | MCR_OUT1);
    EXPECT_EQ(in(MSR)&0xF0, MSR_DSR | MSR_RI);
}

TEST_F(SerialTest, OutsideLoopbackATerminalIsConnected) {
    EXPECT_EQ(in(MSR), MSR_DCD | MSR_DSR | MSR_CTS);
    out(MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
    EXPECT_EQ(in(MSR), MSR_DCD | MSR_DSR | MSR_CTS);
}

TEST_F(SerialTest, ModemStatusChangesRaiseTheModemStatusInterrupt) {
    out(IER, IER_MSI);
    EXPECT_FALSE(irq.level);
    // Entering loopback with RTS only: DSR and DCD drop, CTS stays.
    out(MCR, MCR_LOOP | MCR_RTS);
    EXPECT_TRUE(irq.level);
    EXPECT_EQ(in(IIR), IIR_MSI);
    uint8_t msr = in(MSR);
    EXPECT_EQ(msr & 0x0F, MSR_DDSR | 0x08 /* DDCD */);
    EXPECT_FALSE(irq.level) << "reading MSR clears the deltas";
    EXPECT_EQ(in(IIR), IIR_NO_INT);
    out(MCR, MCR_LOOP);
    EXPECT_EQ(in(MSR)&0x0F, MSR_DCTS);
}

TEST_F(SerialTest, ThreInterruptOnEnableClearedByIirRead) {
    out(IER, IER_THRI);
    EXPECT_TRUE(irq.level) << "THR is empty, so enabling the interrupt raises it";
    EXPECT_EQ(irq.rising_edges, 1);
    EXPECT_EQ(in(IIR), IIR_THRI);
    EXPECT_FALSE(irq.level) << "reading IIR while it reports THRE clears it";
    EXPECT_EQ(in(IIR), IIR_NO_INT);
}

TEST_F(SerialTest, ThreInterruptReassertsWhenReenabled) {
    // Linux's serial8250_do_startup() THRE test: without the second THRE it flags
    // UART_BUG_THRE and drives the port from a timer.
    out(IER, IER_THRI);
    uint8_t iir1 = in(IIR);
    out(IER, 0);
    out(IER, IER_THRI);
    uint8_t iir2 = in(IIR);
    out(IER, 0);
    EXPECT_EQ(iir1, IIR_THRI);
    EXPECT_EQ(iir2, IIR_THRI);
    EXPECT_EQ(irq.rising_edges, 2);
}

TEST_F(SerialTest, WritingThrRearmsThre) {
    out(IER, IER_THRI);
    ASSERT_EQ(in(IIR), IIR_THRI);
    ASSERT_FALSE(irq.level);
    // The interrupt handler's transmit loop: the byte leaves at once, THR is empty again.
    out(THR, 'x');
    EXPECT_TRUE(irq.level);
    EXPECT_EQ(irq.rising_edges, 2);
    EXPECT_EQ(in(IIR), IIR_THRI);
    // Disabling the interrupt (Linux's stop_tx) withdraws it.
    out(THR, 'y');
    out(IER, 0);
    EXPECT_FALSE(irq.level);
    EXPECT_EQ(output, "xy");
}

TEST_F(SerialTest, ThreIsNotRaisedWhileDisabled) {
    out(THR, 'x');
    EXPECT_FALSE(irq.level);
    EXPECT_EQ(in(IIR), IIR_NO_INT);
}

TEST_F(SerialTest, ReceivedDataRaisesRdaUntilDrained) {
    out(FCR, FCR_ENABLE);
    out(IER, IER_RDI);
    EXPECT_FALSE(irq.level);
    EXPECT_EQ(enqueue("ab"), 2u);
    EXPECT_TRUE(irq.level);
    EXPECT_EQ(in(IIR), IIR_FIFOS | IIR_RDI);
    EXPECT_EQ(in(IIR), IIR_FIFOS | IIR_RDI) << "reading IIR does not clear received data";
    EXPECT_EQ(in(LSR), LSR_DR | LSR_THRE | LSR_TEMT);
    EXPECT_EQ(in(RBR), 'a');
    EXPECT_TRUE(irq.level);
    EXPECT_EQ(in(RBR), 'b');
    EXPECT_FALSE(irq.level);
    EXPECT_EQ(in(LSR), LSR_THRE | LSR_TEMT);
    EXPECT_EQ(in(RBR), 'b') << "an empty RBR reads the last byte again";
    EXPECT_EQ(serial.counters().rx_bytes, 2u);
}

TEST_F(SerialTest, InterruptPriorities) {
    // Every source at once: an overrun (loopback into a full one-byte RBR), received data,
    // THR empty and a modem status change.
    out(MCR, MCR_LOOP);
    out(THR, '1');
    out(THR, '2');
    out(IER, IER_RDI | IER_THRI | IER_RLSI | IER_MSI);
    EXPECT_TRUE(irq.level);

    EXPECT_EQ(in(IIR), IIR_RLSI);
    EXPECT_EQ(in(LSR), LSR_DR | LSR_OE | LSR_THRE | LSR_TEMT);
    EXPECT_EQ(in(IIR), IIR_RDI) << "reading LSR cleared the line status interrupt";
    EXPECT_EQ(in(RBR), '1');
    EXPECT_EQ(in(IIR), IIR_THRI);
    EXPECT_EQ(in(IIR), IIR_MSI) << "the IIR read cleared THRE";
    EXPECT_TRUE(irq.level);
    in(MSR);
    EXPECT_EQ(in(IIR), IIR_NO_INT);
    EXPECT_FALSE(irq.level);
}

TEST_F(SerialTest, IirReadDoesNotClearAHiddenThre) {
    out(IER, IER_RDI | IER_THRI);
    enqueue("z");
    EXPECT_EQ(in(IIR), IIR_RDI);
    in(RBR);
    EXPECT_EQ(in(IIR), IIR_THRI) << "THRE was behind RDA, so it is still pending";
}

TEST_F(SerialTest, FifoOverflowSetsOverrunAndIsCounted) {
    out(FCR, FCR_ENABLE);
    out(MCR, MCR_LOOP);
    std::string sent = "0123456789abcdefXYZW";  // 20 bytes into a 16-byte FIFO
    for (char c : sent)
        out(THR, static_cast<uint8_t>(c));
    EXPECT_EQ(serial.counters().rx_dropped, 4u);
    EXPECT_EQ(in(LSR) & (LSR_OE | LSR_DR), LSR_OE | LSR_DR);
    EXPECT_EQ(in(LSR)&LSR_OE, 0) << "reading LSR clears OE";
    EXPECT_EQ(read_received(), sent.substr(0, Serial::k_fifo_size))
        << "the FIFO keeps its bytes; the ones that did not fit are lost";
}

TEST_F(SerialTest, WithFifosDisabledRbrHoldsOneByte) {
    out(MCR, MCR_LOOP);
    out(THR, 'a');
    out(THR, 'b');
    EXPECT_EQ(serial.counters().rx_dropped, 1u);
    EXPECT_EQ(read_received(), "a");
}

TEST_F(SerialTest, HostInputIsFlowControlledNotDropped) {
    out(FCR, FCR_ENABLE);
    std::string text;
    for (int i = 0; i < 5000; ++i)
        text.push_back(static_cast<char>('a' + i % 26));
    size_t accepted = enqueue(text);
    EXPECT_EQ(accepted, Serial::k_input_capacity);
    EXPECT_EQ(serial.input_space(), 0u);
    EXPECT_EQ(enqueue("more"), 0u);
    auto counters = serial.counters();
    EXPECT_EQ(counters.rx_bytes, Serial::k_input_capacity);
    EXPECT_EQ(counters.rx_refused, text.size() - accepted + 4);
    EXPECT_EQ(counters.rx_dropped, 0u);

    // The guest drains; the input thread hears about room once, at half capacity.
    std::string received;
    while (received.size() < Serial::k_input_capacity / 2 - 1)
        received.push_back(static_cast<char>(in(RBR)));
    EXPECT_EQ(space_callbacks, 0);
    received.push_back(static_cast<char>(in(RBR)));
    EXPECT_EQ(space_callbacks, 1);
    EXPECT_EQ(serial.input_space(), Serial::k_input_capacity / 2);

    // The caller retries with what was refused.
    EXPECT_EQ(enqueue(text.substr(accepted)), text.size() - accepted);
    received += read_received();
    EXPECT_EQ(received, text);
    EXPECT_EQ(space_callbacks, 1);
}

TEST_F(SerialTest, HostInputWaitsWhileInLoopback) {
    out(MCR, MCR_LOOP);
    enqueue("z");
    EXPECT_EQ(in(LSR)&LSR_DR, 0) << "in loopback the receiver is disconnected from the wire";
    out(MCR, 0);
    EXPECT_EQ(read_received(), "z");
}

TEST_F(SerialTest, ClearingTheReceiveFifoDiscardsItsBytes) {
    out(FCR, FCR_ENABLE);
    enqueue("abc");
    out(FCR, FCR_ENABLE | FCR_CLEAR_RCVR);
    EXPECT_EQ(in(LSR)&LSR_DR, 0);
    EXPECT_EQ(serial.counters().rx_dropped, 3u);
    EXPECT_EQ(in(IIR), IIR_FIFOS | IIR_NO_INT) << "the FIFOs stay enabled";
}

TEST_F(SerialTest, FifoEnableShowsInIir) {
    out(FCR, FCR_ENABLE);
    EXPECT_EQ(in(IIR), IIR_FIFOS | IIR_NO_INT);
    out(FCR, 0);
    EXPECT_EQ(in(IIR), IIR_NO_INT);
}

TEST_F(SerialTest, LinuxAutoconfigSeesA16550A) {
    // The register dance of autoconfig() in drivers/tty/serial/8250/8250_port.c.
    uint8_t scratch = in(IER);
    out(IER, 0);
    uint8_t scratch2 = in(IER)&0x0F;
    out(IER, 0x0F);
    uint8_t scratch3 = in(IER)&0x0F;
    out(IER, scratch);
    EXPECT_EQ(scratch2, 0);
    EXPECT_EQ(scratch3, 0x0F);

    out(LCR, 0xBF);
    out(FCR, 0);  // the EFR write of 16650s lands in FCR
    out(LCR, 0);
    out(FCR, FCR_ENABLE);
    EXPECT_EQ(in(IIR) >> 6, 3) << "FIFOs enabled: a 16550A";

    // Not a 16750: IIR bit 5 stays clear with and without DLAB.
    out(FCR, FCR_ENABLE | 0x20);
    EXPECT_EQ(in(IIR) >> 5, 6);
    out(LCR, LCR_DLAB);
    out(FCR, FCR_ENABLE | 0x20);
    EXPECT_EQ(in(IIR) >> 5, 6);
    out(LCR, 0);
    // Not an XScale: IER bit 6 does not stick.
    out(IER, 0x40);
    EXPECT_EQ(in(IER), 0);
}

TEST_F(SerialTest, ScratchRegisterKeepsItsValue) {
    out(SCR, 0x5A);
    EXPECT_EQ(in(SCR), 0x5A);
}

TEST_F(SerialTest, WideAccessesAreSplitIntoBytes) {
    std::array<uint8_t, 2> lcr_mcr = {LCR_WLEN8, MCR_DTR | MCR_RTS};
    serial.write(LCR, lcr_mcr);
    EXPECT_EQ(in(LCR), LCR_WLEN8);
    EXPECT_EQ(in(MCR), MCR_DTR | MCR_RTS);

    out(SCR, 0x42);
    std::array<uint8_t, 4> tail{};
    serial.read(MSR, tail);  // MSR, SCR, then two bytes past the last register
    EXPECT_EQ(tail, (std::array<uint8_t, 4>{MSR_DCD | MSR_DSR | MSR_CTS, 0x42, 0xFF, 0xFF}));
}

TEST_F(SerialTest, InputFromAnotherThreadArrivesInOrder) {
    out(FCR, FCR_ENABLE);
    constexpr int k_bytes = 20000;
    std::atomic<bool> done{false};
    std::thread producer([&] {
        for (int sent = 0; sent < k_bytes;) {
            uint8_t byte = static_cast<uint8_t>(sent);
            if (serial.enqueue_input(std::span<const uint8_t>(&byte, 1)) == 1) {
                sent++;
            } else {
                std::this_thread::yield();
            }
        }
        done = true;
    });
    std::vector<uint8_t> received;
    while (received.size() < k_bytes) {
        if (in(LSR)&LSR_DR) {
            received.push_back(in(RBR));
        } else {
            std::this_thread::yield();
        }
    }
    producer.join();
    ASSERT_TRUE(done);
    for (int i = 0; i < k_bytes; ++i)
        ASSERT_EQ(received[i], static_cast<uint8_t>(i)) << i;
    EXPECT_EQ(serial.counters().rx_dropped, 0u);
}

TEST(Serial, WorksWithoutInterruptLineOrSink) {
    Serial serial(nullptr, {});
    uint8_t value = IER_THRI;
    serial.write(IER, std::span<const uint8_t>(&value, 1));
    value = 'x';
    serial.write(THR, std::span<const uint8_t>(&value, 1));
    EXPECT_EQ(serial.counters().tx_bytes, 1u);
    serial.read(IIR, std::span<uint8_t>(&value, 1));
    EXPECT_EQ(value, IIR_THRI);
}

}  // namespace
}  // namespace corral::vmm
