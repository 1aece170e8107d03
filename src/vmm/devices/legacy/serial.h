#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>

#include "base/result.h"
#include "vmm/devices/bus_device.h"
#include "vmm/devices/legacy/serial_state.h"

namespace corral::vmm {

/// Counters of one serial port, for the monitor's metrics.
struct SerialCounters {
    /// Bytes the guest wrote to THR outside loopback mode (handed to the output sink).
    uint64_t tx_bytes = 0;
    /// Bytes enqueue_input() accepted.
    uint64_t rx_bytes = 0;
    /// Received bytes the guest never got: receiver overruns (LSR.OE) and bytes discarded when
    /// the guest reset or disabled the receive FIFO.
    uint64_t rx_dropped = 0;
    /// Bytes enqueue_input() turned away because the input buffer was full. The caller still
    /// holds them (nothing was lost in the device); a high number means the guest reads slowly.
    uint64_t rx_refused = 0;
};

/// A 16550A UART (8 registers, e.g. COM1 at 0x3F8, ISA IRQ 4), as Linux's 8250 driver expects:
/// FIFOs, loopback, the modem lines of a connected terminal (DCD, DSR, CTS), and THR-empty
/// interrupts, without which user space output stalls.
///
/// Transmission is instantaneous: a byte written to THR goes straight to the output sink, so THR
/// and the transmitter are always empty (LSR.THRE and LSR.TEMT stay set).
///
/// Input takes a host-side buffer of k_input_capacity bytes: the oldest k_fifo_size sit in the
/// guest-visible receive FIFO, the rest wait "on the wire" until the guest drains the FIFO
/// (flow control, as with RTS/CTS). enqueue_input() accepts what fits and says how much,
/// so pasted text is never dropped by the device: the caller keeps the rest and retries when
/// the input-space callback fires (or input_space() says there is room). Receiver overruns (LSR.OE)
/// therefore only happen in loopback mode, where the guest itself overfills its FIFO.
///
/// Thread safety: read() and write() run on vCPU threads and enqueue_input() on an input thread;
/// one mutex guards the state. The interrupt line and the output sink are called with that
/// mutex held (so levels and bytes come out in order) and must not call back into the Serial.
class Serial final : public BusDevice {
public:
    /// Receives transmitted bytes (today one byte per call); may buffer, must not block for long.
    using OutputSink = std::function<void(std::span<const uint8_t>)>;
    /// Called when input space frees up after enqueue_input() had to refuse bytes.
    using InputSpaceCallback = std::function<void()>;

    /// Receive FIFO depth of a 16550A (PC16550D datasheet, "FIFO Control Register").
    static constexpr size_t k_fifo_size = 16;
    /// Received bytes the device holds at most (FIFO included) before enqueue_input() refuses.
    static constexpr size_t k_input_capacity = 4096;

    /// `irq` is the port's interrupt line (may be null: the guest then has to poll); `output`
    /// gets the transmitted bytes (may be empty: they are counted and discarded).
    /// `on_input_space` is called on a vCPU thread without the device lock held, once per
    /// refusal, when at least half of the input capacity is free again; it must not block
    /// (signal an eventfd, say) and may call enqueue_input().
    explicit Serial(InterruptLine* irq, OutputSink output, InputSpaceCallback on_input_space = {});

    /// Register reads at offsets 0-7. Wider accesses are split into byte accesses
    /// (see read_bytewise()).
    void read(uint64_t offset, std::span<uint8_t> data) override;
    /// Register writes at offsets 0-7, split into bytes like read().
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    /// Queues bytes for the guest to receive, raising the received-data interrupt. Returns how
    /// many bytes from the front of `bytes` were accepted (0 when the buffer is full); the
    /// caller keeps the rest. Callable from any thread.
    size_t enqueue_input(std::span<const uint8_t> bytes);
    /// How many bytes enqueue_input() would accept now.
    size_t input_space() const;

    SerialCounters counters() const;

    /// The guest-visible state, for a snapshot (the vCPUs are paused).
    SerialState save() const;
    /// Replaces the state with a saved one, after checking it (a hostile file gives an error,
    /// and the device is unchanged), and drives the interrupt line to the restored level.
    Result<void> restore(const SerialState& state);

private:
    uint8_t read_register(uint64_t offset);
    void write_register(uint64_t offset, uint8_t value);

    uint8_t interrupt_id() const;
    uint8_t modem_status_lines() const;
    size_t rx_fifo_capacity() const;
    size_t input_used() const;
    bool loopback() const;
    void receive_from_loopback(uint8_t value);
    void refill_rx_fifo();
    void clear_rx_fifo();
    void write_modem_control(uint8_t value);
    void write_fifo_control(uint8_t value);
    void update_interrupt_line();

    InterruptLine* const m_irq;
    const OutputSink m_output;
    const InputSpaceCallback m_on_input_space;

    mutable std::mutex m_mutex;
    uint8_t m_ier = 0;
    uint8_t m_fcr = 0;
    uint8_t m_lcr = 0;
    uint8_t m_mcr = 0;
    uint8_t m_scr = 0;
    uint8_t m_dll = 0x0C;  // 9600 baud; the datasheet leaves the divisor undefined at reset
    uint8_t m_dlm = 0;
    uint8_t m_rbr = 0;         // the last byte read, returned again when the FIFO is empty
    uint8_t m_lsr_errors = 0;  // latched LSR error bits, cleared by reading LSR
    uint8_t m_msr_deltas = 0;  // MSR bits 0-3, cleared by reading MSR
    bool m_thre_pending = false;
    bool m_irq_level = false;
    bool m_input_refused = false;
    std::deque<uint8_t> m_rx_fifo;  // what the guest can read now
    std::deque<uint8_t> m_input;    // accepted host bytes waiting for room in the FIFO
    SerialCounters m_counters;
};

}  // namespace corral::vmm
