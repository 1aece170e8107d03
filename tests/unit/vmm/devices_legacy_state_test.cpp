// Snapshot state of the legacy devices: save -> encode -> decode -> restore into a fresh device
// -> save again gives the same bytes, the restored device answers the guest's reads as the
// original does, and bad states are refused without changing the device.
#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "vmm/devices/legacy/acpi_power.h"
#include "vmm/devices/legacy/i8042.h"
#include "vmm/devices/legacy/rtc.h"
#include "vmm/devices/legacy/serial.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm {
namespace {

using Bytes = std::vector<uint8_t>;

struct RecordingLine final : InterruptLine {
    void set_level(bool high) override { level = high; }
    bool level = false;
};

uint8_t in(BusDevice& device, uint64_t offset) {
    uint8_t value = 0;
    device.read(offset, std::span<uint8_t>(&value, 1));
    return value;
}

void out(BusDevice& device, uint64_t offset, uint8_t value) {
    device.write(offset, std::span<const uint8_t>(&value, 1));
}

template <typename State>
Bytes encode(const State& state) {
    snapshot::StateWriter writer;
    state.encode(writer);
    return writer.take();
}

template <typename State>
State decode(const Bytes& bytes) {
    auto state = snapshot::decode_all<State>(bytes, "test", [](snapshot::StateReader& r) {
        return State::decode(r);
    });
    EXPECT_TRUE(state) << state.error().message();
    return state.value_or(State{});
}

/// Every truncation of an encoded state is refused by the decoder.
template <typename State>
void expect_truncations_refused(const Bytes& bytes) {
    for (size_t size = 0; size < bytes.size(); ++size) {
        auto state = snapshot::decode_all<State>(std::span(bytes).first(size), "test",
                                                 [](snapshot::StateReader& r) {
                                                     return State::decode(r);
                                                 });
        EXPECT_FALSE(state) << "accepted " << size << " of " << bytes.size() << " bytes";
    }
}

// Serial registers (16550A): offsets and bits as in Linux's serial_reg.h.
constexpr uint64_t UART_TX = 0, UART_IER = 1, UART_FCR = 2, UART_IIR = 2, UART_LCR = 3,
                   UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7;

TEST(SerialStateTest, RoundTripsRegistersAndUnreadInput) {
    RecordingLine line;
    Serial serial(&line, {});
    out(serial, UART_LCR, 0x80);  // DLAB: divisor 1 (115200 baud)
    out(serial, UART_TX, 0x01);
    out(serial, UART_IER, 0x00);
    out(serial, UART_LCR, 0x03);
    out(serial, UART_FCR, 0xC7);
    out(serial, UART_MCR, 0x0B);
    out(serial, UART_SCR, 0x5A);
    out(serial, UART_IER, 0x01);  // received-data interrupt
    Bytes input(40, 'x');
    for (size_t i = 0; i < input.size(); ++i)
        input[i] = static_cast<uint8_t>('a' + i % 26);
    ASSERT_EQ(serial.enqueue_input(input), input.size());
    EXPECT_EQ(in(serial, UART_TX), 'a');  // the guest has read one byte
    ASSERT_TRUE(line.level);

    Bytes saved = encode(serial.save());
    RecordingLine restored_line;
    Serial restored(&restored_line, {});
    ASSERT_TRUE(restored.restore(decode<SerialState>(saved)));
    EXPECT_EQ(encode(restored.save()), saved);
    EXPECT_TRUE(restored_line.level) << "the pending receive interrupt was lost";

    // The guest reads the same registers and the same remaining 39 bytes from both.
    for (uint64_t reg : {UART_IER, UART_IIR, UART_LCR, UART_MCR, UART_LSR, UART_MSR, UART_SCR})
        EXPECT_EQ(in(restored, reg), in(serial, reg)) << "register " << reg;
    for (size_t i = 1; i < input.size(); ++i)
        ASSERT_EQ(in(restored, UART_TX), input[i]);
    EXPECT_EQ(in(restored, UART_LSR) & 0x01, 0);
    expect_truncations_refused<SerialState>(saved);
}

TEST(SerialStateTest, RefusesImpossibleStatesAndStaysUnchanged) {
    Serial serial(nullptr, {});
    out(serial, UART_SCR, 0x77);
    SerialState bad = serial.save();
    bad.rx_fifo.assign(2, 'x');  // FIFOs disabled (FCR 0): the receive buffer holds one byte
    EXPECT_FALSE(serial.restore(bad));
    bad = serial.save();
    bad.ier = 0xF0;
    EXPECT_FALSE(serial.restore(bad));
    bad = serial.save();
    bad.fcr = 0x01;
    bad.rx_fifo.assign(Serial::k_fifo_size, 'x');
    bad.input.assign(Serial::k_input_capacity, 'y');
    EXPECT_FALSE(serial.restore(bad));
    EXPECT_EQ(in(serial, UART_SCR), 0x77);

    // The decoder bounds the buffers before allocating: a FIFO of 17 bytes is refused there.
    SerialState long_fifo;
    long_fifo.rx_fifo.assign(Serial::k_fifo_size + 1, 'x');
    auto decoded = snapshot::decode_all<SerialState>(
        encode(long_fifo), "test", [](snapshot::StateReader& r) { return SerialState::decode(r); });
    EXPECT_FALSE(decoded);
}

// i8042 ports and commands (Linux's i8042.h).
constexpr uint64_t DATA = 0, STATUS = 4, COMMAND = 4;

TEST(I8042StateTest, RoundTripsControllerAndKeyboard) {
    RecordingLine keyboard_line;
    I8042 controller([] {}, &keyboard_line);
    out(controller, COMMAND, 0x60);  // write the command byte: keyboard interrupt, no XLATE
    out(controller, DATA, 0x05);
    out(controller, DATA, 0xF0);  // keyboard: select scan code set...
    EXPECT_EQ(in(controller, DATA), 0xFA);
    out(controller, DATA, 0x01);  // ...1
    EXPECT_EQ(in(controller, DATA), 0xFA);
    out(controller, DATA, 0xED);  // set LEDs; the argument is still to come
    EXPECT_EQ(in(controller, DATA), 0xFA);
    ASSERT_TRUE(controller.send_ctrl_alt_del());  // six bytes queued, the first one in the buffer
    EXPECT_EQ(in(controller, DATA), 0x1D);        // Ctrl in set 1
    ASSERT_TRUE(keyboard_line.level);

    Bytes saved = encode(controller.save());
    RecordingLine restored_line;
    I8042 restored([] {}, &restored_line);
    ASSERT_TRUE(restored.restore(decode<I8042State>(saved)));
    EXPECT_EQ(encode(restored.save()), saved);
    EXPECT_TRUE(restored_line.level);
    // Status, and the rest of the key sequence, byte for byte.
    for (int i = 0; i < 6; ++i) {
        ASSERT_EQ(in(restored, STATUS), in(controller, STATUS));
        ASSERT_EQ(in(restored, DATA), in(controller, DATA));
    }
    // The LED command's argument is still awaited in both.
    out(controller, DATA, 0x02);
    out(restored, DATA, 0x02);
    EXPECT_EQ(in(restored, DATA), in(controller, DATA));
    EXPECT_EQ(encode(restored.save()), encode(controller.save()));
    expect_truncations_refused<I8042State>(saved);
}

TEST(I8042StateTest, RefusesABadKeyboardState) {
    I8042 controller([] {});
    I8042State bad = controller.save();
    bad.keyboard.scancode_set = 3;
    EXPECT_FALSE(controller.restore(bad));
    bad = controller.save();
    bad.keyboard.pending_command = 0x42;
    EXPECT_FALSE(controller.restore(bad));
    bad = controller.save();
    bad.ram[0] = 0;
    bad.keyboard.queue.assign(Ps2Keyboard::k_queue_capacity + 1, 0x1C);
    EXPECT_FALSE(controller.restore(bad));
    EXPECT_NE(controller.save().ram[0], 0) << "a refused state changed the controller";
}

TEST(RtcStateTest, RoundTripsCmosAndTheGuestsClockOffset) {
    using namespace std::chrono;
    auto now = sys_days{2026y / December / 6} + 4h;
    Rtc rtc([&] { return system_clock::time_point(now); });
    // The guest sets its clock one hour ahead (hwclock --systohc): SET, hours, clear SET.
    out(rtc, 0, 0x0B);
    out(rtc, 1, 0x82);
    out(rtc, 0, 0x04);
    out(rtc, 1, 0x05);
    out(rtc, 0, 0x0B);
    out(rtc, 1, 0x02);
    out(rtc, 0, 0x40);  // plain CMOS RAM
    out(rtc, 1, 0xA5);
    ASSERT_EQ(rtc.guest_offset(), hours(1));

    Bytes saved = encode(rtc.save());
    // Restored a day later, the guest's clock is still one hour ahead of the host's.
    auto later = now + days(1);
    Rtc restored([&] { return system_clock::time_point(later); });
    ASSERT_TRUE(restored.restore(decode<RtcState>(saved)));
    EXPECT_EQ(encode(restored.save()), saved);
    EXPECT_EQ(restored.guest_offset(), hours(1));
    out(restored, 0, 0x04);
    EXPECT_EQ(in(restored, 1), 0x05);  // BCD hours: 04:00 host + 1 h
    out(restored, 0, 0x07);
    EXPECT_EQ(in(restored, 1), 0x07);  // day of month: the 7th
    out(restored, 0, 0x40);
    EXPECT_EQ(in(restored, 1), 0xA5);
    expect_truncations_refused<RtcState>(saved);

    RtcState bad = rtc.save();
    bad.offset_seconds = INT64_MAX;
    EXPECT_FALSE(restored.restore(bad));
    bad = rtc.save();
    bad.index = 0x80;
    EXPECT_FALSE(restored.restore(bad));
}

TEST(AcpiSleepStateTest, RoundTripsWakeStatus) {
    AcpiSleepControl acpi([] {});
    out(acpi, 0, static_cast<uint8_t>((1 << 2) | 0x20));  // an S1 request: refused, WAK_STS set
    ASSERT_EQ(in(acpi, 1), 0x80);
    Bytes saved = encode(acpi.save());
    AcpiSleepControl restored([] {});
    restored.restore(decode<AcpiSleepState>(saved));
    EXPECT_EQ(encode(restored.save()), saved);
    EXPECT_EQ(in(restored, 1), 0x80);
    expect_truncations_refused<AcpiSleepState>(saved);
}

}  // namespace
}  // namespace corral::vmm
