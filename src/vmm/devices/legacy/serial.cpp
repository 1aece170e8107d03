#include "vmm/devices/legacy/serial.h"

#include <algorithm>
#include <utility>

#include "vmm/devices/legacy/byte_access.h"

// Register layout and behaviour follow the National/TI PC16550D datasheet; sections are cited
// by register name.

namespace corral::vmm {
namespace {

// Register offsets ("Summary of Registers"). DLAB (LCR bit 7) maps offsets 0 and 1 to the
// divisor latch; offset 2 is IIR on read and FCR on write whatever DLAB says.
constexpr uint64_t k_data = 0;              // RBR (read), THR (write), DLL (DLAB)
constexpr uint64_t k_interrupt_enable = 1;  // IER, DLM (DLAB)
constexpr uint64_t k_interrupt_id = 2;      // IIR (read), FCR (write)
constexpr uint64_t k_line_control = 3;
constexpr uint64_t k_modem_control = 4;
constexpr uint64_t k_line_status = 5;
constexpr uint64_t k_modem_status = 6;
constexpr uint64_t k_scratch = 7;
constexpr uint64_t k_register_count = 8;

constexpr uint8_t k_ier_received_data = 0x01;
constexpr uint8_t k_ier_thr_empty = 0x02;
constexpr uint8_t k_ier_line_status = 0x04;
constexpr uint8_t k_ier_modem_status = 0x08;
// Bits 4-7 read as zero on a 16550A; Linux's autoconfig relies on it (its IER and XScale tests).
constexpr uint8_t k_ier_mask = 0x0F;

// IIR interrupt identification codes ("Interrupt Control Functions" table).
constexpr uint8_t k_iir_no_interrupt = 0x01;
constexpr uint8_t k_iir_line_status = 0x06;
constexpr uint8_t k_iir_received_data = 0x04;
constexpr uint8_t k_iir_thr_empty = 0x02;
constexpr uint8_t k_iir_modem_status = 0x00;
constexpr uint8_t k_iir_fifos_enabled = 0xC0;

constexpr uint8_t k_fcr_enable = 0x01;
constexpr uint8_t k_fcr_clear_receive = 0x02;
// What FCR keeps: enable, DMA mode select and the receive trigger level (bits 1-2 self-clear).
constexpr uint8_t k_fcr_kept = 0xC9;

constexpr uint8_t k_lcr_dlab = 0x80;

constexpr uint8_t k_mcr_dtr = 0x01;
constexpr uint8_t k_mcr_rts = 0x02;
constexpr uint8_t k_mcr_out1 = 0x04;
constexpr uint8_t k_mcr_out2 = 0x08;
constexpr uint8_t k_mcr_loopback = 0x10;
constexpr uint8_t k_mcr_mask = 0x1F;

constexpr uint8_t k_lsr_data_ready = 0x01;
constexpr uint8_t k_lsr_overrun = 0x02;
constexpr uint8_t k_lsr_errors = 0x1E;  // overrun, parity, framing, break
constexpr uint8_t k_lsr_thr_empty = 0x20;
constexpr uint8_t k_lsr_transmitter_empty = 0x40;

constexpr uint8_t k_msr_delta_cts = 0x01;
constexpr uint8_t k_msr_delta_dsr = 0x02;
constexpr uint8_t k_msr_trailing_edge_ri = 0x04;
constexpr uint8_t k_msr_delta_dcd = 0x08;
constexpr uint8_t k_msr_cts = 0x10;
constexpr uint8_t k_msr_dsr = 0x20;
constexpr uint8_t k_msr_ri = 0x40;
constexpr uint8_t k_msr_dcd = 0x80;

}  // namespace

Serial::Serial(InterruptLine* irq, OutputSink output, InputSpaceCallback on_input_space)
    : m_irq(irq), m_output(std::move(output)), m_on_input_space(std::move(on_input_space)) {}

void Serial::read(uint64_t offset, std::span<uint8_t> data) {
    bool notify_space = false;
    {
        std::lock_guard lock(m_mutex);
        read_bytewise(offset, data, k_register_count,
                      [this](uint64_t register_offset) { return read_register(register_offset); });
        update_interrupt_line();
        // Hysteresis: wake the input thread once half the buffer is free, not for every byte.
        if (m_input_refused && input_used() <= k_input_capacity / 2) {
            m_input_refused = false;
            notify_space = true;
        }
    }
    if (notify_space && m_on_input_space)
        m_on_input_space();
}

void Serial::write(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_mutex);
    write_bytewise(offset, data, k_register_count, [this](uint64_t register_offset, uint8_t value) {
        write_register(register_offset, value);
    });
    update_interrupt_line();
}

size_t Serial::enqueue_input(std::span<const uint8_t> bytes) {
    std::lock_guard lock(m_mutex);
    size_t used = input_used();
    size_t space = used < k_input_capacity ? k_input_capacity - used : 0;
    size_t accepted = std::min(space, bytes.size());
    m_input.insert(m_input.end(), bytes.begin(), bytes.begin() + accepted);
    m_counters.rx_bytes += accepted;
    if (accepted < bytes.size()) {
        m_counters.rx_refused += bytes.size() - accepted;
        m_input_refused = true;
    }
    refill_rx_fifo();
    update_interrupt_line();
    return accepted;
}

size_t Serial::input_space() const {
    std::lock_guard lock(m_mutex);
    size_t used = input_used();
    return used < k_input_capacity ? k_input_capacity - used : 0;
}

SerialCounters Serial::counters() const {
    std::lock_guard lock(m_mutex);
    return m_counters;
}

SerialState Serial::save() const {
    std::lock_guard lock(m_mutex);
    SerialState state{m_ier, m_fcr, m_lcr, m_mcr, m_scr, m_dll, m_dlm, m_rbr, m_lsr_errors,
                      m_msr_deltas, m_thre_pending, {}, {}};
    state.rx_fifo.assign(m_rx_fifo.begin(), m_rx_fifo.end());
    state.input.assign(m_input.begin(), m_input.end());
    return state;
}

Result<void> Serial::restore(const SerialState& state) {
    // The decoder bounds both buffers; check again, as a SerialState may come from elsewhere,
    // and check what the registers imply (a FIFO larger than FCR allows, unknown bits).
    size_t fifo_capacity = (state.fcr & k_fcr_enable) ? k_fifo_size : 1;
    if (state.rx_fifo.size() > fifo_capacity)
        return fail(ErrorKind::Invalid, "serial state: receive FIFO holds more than FCR allows");
    if (state.rx_fifo.size() + state.input.size() > k_input_capacity)
        return fail(ErrorKind::Invalid, "serial state: more input than the device buffers");
    if ((state.ier & ~k_ier_mask) != 0 || (state.mcr & ~k_mcr_mask) != 0 ||
        (state.fcr & ~k_fcr_kept) != 0 || (state.lsr_errors & ~k_lsr_errors) != 0 ||
        (state.msr_deltas & ~0x0F) != 0)
        return fail(ErrorKind::Invalid, "serial state: reserved register bits set");
    std::lock_guard lock(m_mutex);
    m_ier = state.ier;
    m_fcr = state.fcr;
    m_lcr = state.lcr;
    m_mcr = state.mcr;
    m_scr = state.scr;
    m_dll = state.dll;
    m_dlm = state.dlm;
    m_rbr = state.rbr;
    m_lsr_errors = state.lsr_errors;
    m_msr_deltas = state.msr_deltas;
    m_thre_pending = state.thre_pending;
    m_rx_fifo.assign(state.rx_fifo.begin(), state.rx_fifo.end());
    m_input.assign(state.input.begin(), state.input.end());
    m_input_refused = false;
    // Drive the line whatever it was: the restored interrupt controller holds the saved level,
    // and this device's notion of it must match.
    m_irq_level = interrupt_id() != k_iir_no_interrupt;
    if (m_irq)
        m_irq->set_level(m_irq_level);
    return {};
}

uint8_t Serial::read_register(uint64_t offset) {
    bool dlab = (m_lcr & k_lcr_dlab) != 0;
    switch (offset) {
        case k_data:
            if (dlab)
                return m_dll;
            if (!m_rx_fifo.empty()) {
                m_rbr = m_rx_fifo.front();
                m_rx_fifo.pop_front();
                refill_rx_fifo();
            }
            return m_rbr;
        case k_interrupt_enable:
            return dlab ? m_dlm : m_ier;
        case k_interrupt_id: {
            uint8_t id = interrupt_id();
            // "Interrupt Identification Register": reading IIR clears a THRE interrupt, but only
            // when IIR is the one reporting it (a higher-priority source hides it).
            if (id == k_iir_thr_empty)
                m_thre_pending = false;
            return id | ((m_fcr & k_fcr_enable) ? k_iir_fifos_enabled : 0);
        }
        case k_line_control:
            return m_lcr;
        case k_modem_control:
            return m_mcr;
        case k_line_status: {
            uint8_t value = m_lsr_errors | k_lsr_thr_empty | k_lsr_transmitter_empty;
            if (!m_rx_fifo.empty())
                value |= k_lsr_data_ready;
            // Error bits (and the line-status interrupt) clear when LSR is read.
            m_lsr_errors = 0;
            return value;
        }
        case k_modem_status: {
            uint8_t value = modem_status_lines() | m_msr_deltas;
            m_msr_deltas = 0;
            return value;
        }
        case k_scratch:
            return m_scr;
        default:
            return k_open_bus_byte;
    }
}

void Serial::write_register(uint64_t offset, uint8_t value) {
    bool dlab = (m_lcr & k_lcr_dlab) != 0;
    switch (offset) {
        case k_data:
            if (dlab) {
                m_dll = value;
                return;
            }
            if (loopback()) {
                // "Modem Control Register", bit 4: the transmitter output is looped back to the
                // receiver and nothing leaves the chip.
                receive_from_loopback(value);
            } else {
                m_counters.tx_bytes++;
                if (m_output)
                    m_output(std::span<const uint8_t>(&value, 1));
            }
            // Writing THR clears a THRE interrupt; the byte then leaves THR at once, and THR
            // becoming empty raises it again. Net effect: pending whenever it is enabled. The
            // line does not drop in between; Linux's handler reads IIR (clearing THRE, which
            // lowers the line) before it writes the next bytes, so each batch gives an edge.
            m_thre_pending = (m_ier & k_ier_thr_empty) != 0;
            return;
        case k_interrupt_enable: {
            if (dlab) {
                m_dlm = value;
                return;
            }
            uint8_t previous = m_ier;
            m_ier = value & k_ier_mask;
            // Enabling the THRE interrupt while THR is empty (always, here) raises it at once.
            // Linux's 8250 startup test depends on it: it enables IER.THRI, reads IIR, disables,
            // enables again and expects THRE to be reported again (else it flags UART_BUG_THRE
            // and falls back to a polling timer).
            if ((m_ier & k_ier_thr_empty) && !(previous & k_ier_thr_empty))
                m_thre_pending = true;
            if (!(m_ier & k_ier_thr_empty))
                m_thre_pending = false;
            return;
        }
        case k_interrupt_id:
            write_fifo_control(value);
            return;
        case k_line_control:
            m_lcr = value;
            return;
        case k_modem_control:
            write_modem_control(value);
            return;
        case k_scratch:
            m_scr = value;
            return;
        default:
            // LSR and MSR are read-only here (writing them is for factory test on a 16550).
            return;
    }
}

uint8_t Serial::interrupt_id() const {
    // Priority order of the "Interrupt Control Functions" table: line status, received data,
    // THR empty, modem status. Received data is reported as soon as the FIFO holds a byte (no
    // trigger level or character timeout): Linux treats both IIR codes alike, and waiting
    // would only add latency to a virtual wire.
    if ((m_ier & k_ier_line_status) && (m_lsr_errors & k_lsr_errors))
        return k_iir_line_status;
    if ((m_ier & k_ier_received_data) && !m_rx_fifo.empty())
        return k_iir_received_data;
    if ((m_ier & k_ier_thr_empty) && m_thre_pending)
        return k_iir_thr_empty;
    if ((m_ier & k_ier_modem_status) && m_msr_deltas)
        return k_iir_modem_status;
    return k_iir_no_interrupt;
}

uint8_t Serial::modem_status_lines() const {
    if (!loopback()) {
        // A terminal is always attached: carrier detect, data set ready and clear to send.
        return k_msr_dcd | k_msr_dsr | k_msr_cts;
    }
    // "Modem Control Register", bit 4: in loopback the modem control outputs drive the modem
    // status inputs: DTR -> DSR, RTS -> CTS, OUT1 -> RI, OUT2 -> DCD.
    uint8_t lines = 0;
    if (m_mcr & k_mcr_dtr)
        lines |= k_msr_dsr;
    if (m_mcr & k_mcr_rts)
        lines |= k_msr_cts;
    if (m_mcr & k_mcr_out1)
        lines |= k_msr_ri;
    if (m_mcr & k_mcr_out2)
        lines |= k_msr_dcd;
    return lines;
}

size_t Serial::rx_fifo_capacity() const {
    // With FIFOs disabled the 16550 behaves as a 16450: RBR holds one byte.
    return (m_fcr & k_fcr_enable) ? k_fifo_size : 1;
}

size_t Serial::input_used() const {
    return m_rx_fifo.size() + m_input.size();
}

bool Serial::loopback() const {
    return (m_mcr & k_mcr_loopback) != 0;
}

void Serial::receive_from_loopback(uint8_t value) {
    if (m_rx_fifo.size() >= rx_fifo_capacity()) {
        // "Line Status Register", OE: the new character is lost, the FIFO keeps its contents.
        m_lsr_errors |= k_lsr_overrun;
        m_counters.rx_dropped++;
        return;
    }
    m_rx_fifo.push_back(value);
}

void Serial::refill_rx_fifo() {
    // In loopback the receiver is disconnected from the serial input; host bytes wait.
    if (loopback())
        return;
    while (!m_input.empty() && m_rx_fifo.size() < rx_fifo_capacity()) {
        m_rx_fifo.push_back(m_input.front());
        m_input.pop_front();
    }
}

void Serial::clear_rx_fifo() {
    m_counters.rx_dropped += m_rx_fifo.size();
    m_rx_fifo.clear();
}

void Serial::write_modem_control(uint8_t value) {
    uint8_t before = modem_status_lines();
    m_mcr = value & k_mcr_mask;
    uint8_t after = modem_status_lines();
    // "Modem Status Register": bits 0, 1 and 3 record a change of CTS, DSR and DCD since MSR
    // was last read; bit 2 records RI going from on to off (a trailing edge).
    uint8_t changed = before ^ after;
    if (changed & k_msr_cts)
        m_msr_deltas |= k_msr_delta_cts;
    if (changed & k_msr_dsr)
        m_msr_deltas |= k_msr_delta_dsr;
    if (changed & k_msr_dcd)
        m_msr_deltas |= k_msr_delta_dcd;
    if ((before & k_msr_ri) && !(after & k_msr_ri))
        m_msr_deltas |= k_msr_trailing_edge_ri;
    refill_rx_fifo();  // leaving loopback reconnects the input
}

void Serial::write_fifo_control(uint8_t value) {
    // "FIFO Control Register": changing FCR0 clears both FIFOs, and the other bits are only
    // programmed while FCR0 is (being) set.
    bool enable = (value & k_fcr_enable) != 0;
    if (enable != ((m_fcr & k_fcr_enable) != 0))
        clear_rx_fifo();
    if (enable) {
        if (value & k_fcr_clear_receive)
            clear_rx_fifo();
        // Clearing the transmit FIFO has nothing to do: it never holds anything.
        m_fcr = value & k_fcr_kept;
    } else {
        m_fcr = 0;
    }
    refill_rx_fifo();
}

void Serial::update_interrupt_line() {
    bool level = interrupt_id() != k_iir_no_interrupt;
    // Only transitions matter to the in-kernel PIC/IOAPIC (ISA IRQs are edge-triggered), so
    // skip the KVM_IRQ_LINE ioctl when nothing changed.
    if (level == m_irq_level)
        return;
    m_irq_level = level;
    if (m_irq)
        m_irq->set_level(level);
}

}  // namespace corral::vmm
