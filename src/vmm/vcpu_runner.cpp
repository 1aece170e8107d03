#include "vmm/vcpu_runner.h"

#include <signal.h>

#include <fmt/format.h>

#include "base/log.h"
#include "base/signal_mask.h"
#include "vmm/devices/bus.h"
#include "vmm/unhandled_access_log.h"
#include "vmm/vm_exit.h"

namespace corral::vmm {
namespace {

int kick_signal() { return SIGRTMIN; }

void on_kick_signal(int) {}

std::string register_summary(const kvm::Vcpu& vcpu) {
    auto regs = vcpu.regs();
    auto sregs = vcpu.sregs();
    if (!regs || !sregs) return "registers unavailable";
    return fmt::format("RIP=0x{:x} RSP=0x{:x} CR0=0x{:x} CR3=0x{:x} CR4=0x{:x} EFER=0x{:x}",
                       regs->rip, regs->rsp, sregs->cr0, sregs->cr3, sregs->cr4, sregs->efer);
}

}  // namespace

VcpuRunner::VcpuRunner(kvm::Vcpu vcpu, VcpuContext context)
    : m_vcpu(std::move(vcpu)), m_context(context) {}

VcpuRunner::~VcpuRunner() {
    request_stop();
    join();
}

void VcpuRunner::install_kick_signal_handler() {
    struct sigaction action {};
    action.sa_handler = on_kick_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
    sigaction(kick_signal(), &action, nullptr);
}

void VcpuRunner::start() {
    m_thread = std::thread([this] { thread_main(); });
    // "vcpuN": how corrald finds the vCPU threads to pin them and to read their scheduler
    // statistics (daemon/vcpu_threads.h); QEMU names its own "CPU N/KVM".
    pthread_setname_np(m_thread.native_handle(), fmt::format("vcpu{}", m_vcpu.id()).c_str());
}

void VcpuRunner::request_stop() {
    m_stop.store(true);
    // immediate_exit makes a KVM_RUN that starts after this point return at once; the signal
    // interrupts one already running (KVM API doc, "immediate_exit").
    m_vcpu.run_area()->immediate_exit = 1;
    {
        // Under the mutex, so a thread about to wait in park() cannot miss the wake-up.
        std::lock_guard lock(m_park_mutex);
    }
    m_park_changed.notify_all();
    if (m_thread.joinable()) pthread_kill(m_thread.native_handle(), kick_signal());
}

void VcpuRunner::request_pause() {
    m_pause_requested.store(true);
    // Same kick as request_stop(): the thread sees the request at the top of its loop, whether
    // it was in KVM_RUN (EINTR), about to enter it (immediate_exit) or handling an exit.
    m_vcpu.run_area()->immediate_exit = 1;
    if (m_thread.joinable()) pthread_kill(m_thread.native_handle(), kick_signal());
}

bool VcpuRunner::wait_parked(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(m_park_mutex);
    if (!m_thread.joinable()) return true;  // never started: nothing runs the guest
    return m_park_changed.wait_until(lock, deadline, [this] { return m_parked || m_finished; });
}

void VcpuRunner::resume() {
    {
        std::lock_guard lock(m_park_mutex);
        m_pause_requested.store(false);
    }
    m_park_changed.notify_all();
}

void VcpuRunner::park() {
    std::unique_lock lock(m_park_mutex);
    if (!m_pause_requested.load() || m_stop.load()) return;
    // The kick is consumed: clear immediate_exit so KVM_RUN enters the guest after resume. A
    // request_stop() racing with this sets m_stop first, which the wait below checks.
    m_vcpu.run_area()->immediate_exit = 0;
    m_parked = true;
    m_park_changed.notify_all();
    m_park_changed.wait(lock, [this] { return !m_pause_requested.load() || m_stop.load(); });
    m_parked = false;
    if (m_stop.load()) m_vcpu.run_area()->immediate_exit = 1;
}

void VcpuRunner::join() {
    if (m_thread.joinable()) m_thread.join();
}

void VcpuRunner::thread_main() {
    // The kick signal is blocked on the main thread (see Vmm); vCPU threads take it.
    unblock_signals(signal_set({kick_signal()}));

    struct FinishedMark {
        VcpuRunner& runner;
        ~FinishedMark() {
            {
                std::lock_guard lock(runner.m_park_mutex);
                runner.m_finished = true;
            }
            runner.m_park_changed.notify_all();
        }
    } finished{*this};

    while (!m_stop.load()) {
        if (m_pause_requested.load()) {
            park();
            continue;
        }
        auto result = m_vcpu.run();
        if (!result) {
            int error = result.error().errno_value();
            if (error == EINTR || error == EAGAIN) {
                // A kick (or a pause already resumed): clear immediate_exit so the next KVM_RUN
                // enters the guest, then look at the requests again at the top of the loop.
                // The fence orders the clear before those loads: a requester sets its flag
                // before immediate_exit, so either we see its flag or its immediate_exit = 1
                // lands after our clear.
                m_vcpu.run_area()->immediate_exit = 0;
                std::atomic_thread_fence(std::memory_order_seq_cst);
                continue;
            }
            m_context.exits->report({VmExitReason::Failure,
                                     fmt::format("vCPU {}: {}", m_vcpu.id(), result.error().describe())});
            return;
        }
        if (!handle_exit()) return;
    }
}

bool VcpuRunner::handle_exit() {
    kvm_run* run = m_vcpu.run_area();
    if (run->exit_reason == KVM_EXIT_IO)
        m_history.note(run->exit_reason, run->io.port, run->io.direction == KVM_EXIT_IO_OUT);
    else if (run->exit_reason == KVM_EXIT_MMIO)
        m_history.note(run->exit_reason, run->mmio.phys_addr, run->mmio.is_write);
    else
        m_history.note(run->exit_reason, 0, false);
    switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            // data_offset and the sizes come from KVM, not the guest; count > 1 for rep ins/outs.
            uint8_t* data = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
            for (uint32_t i = 0; i < run->io.count; ++i) {
                std::span<uint8_t> item(data + i * run->io.size, run->io.size);
                if (run->io.direction == KVM_EXIT_IO_OUT) {
                    if (!m_context.pio_bus->write(run->io.port, item))
                        m_context.unhandled->record(UnhandledAccessLog::Space::Port, run->io.port,
                                                    UnhandledAccessLog::Direction::Write);
                } else if (!m_context.pio_bus->read(run->io.port, item)) {
                    std::fill(item.begin(), item.end(), 0xFF);  // an empty ISA bus reads as all ones
                    m_context.unhandled->record(UnhandledAccessLog::Space::Port, run->io.port,
                                                UnhandledAccessLog::Direction::Read);
                }
            }
            return true;
        }
        case KVM_EXIT_MMIO: {
            std::span<uint8_t> data(run->mmio.data, std::min<uint32_t>(run->mmio.len, 8));
            if (run->mmio.is_write) {
                if (!m_context.mmio_bus->write(run->mmio.phys_addr, data))
                    m_context.unhandled->record(UnhandledAccessLog::Space::Mmio, run->mmio.phys_addr,
                                                UnhandledAccessLog::Direction::Write);
            } else if (!m_context.mmio_bus->read(run->mmio.phys_addr, data)) {
                std::fill(data.begin(), data.end(), 0xFF);
                m_context.unhandled->record(UnhandledAccessLog::Space::Mmio, run->mmio.phys_addr,
                                            UnhandledAccessLog::Direction::Read);
            }
            return true;
        }
        case KVM_EXIT_HLT:
            // Only seen without an in-kernel LAPIC; with one, KVM waits for the interrupt itself.
            return true;
        case KVM_EXIT_SHUTDOWN:
            // KVM has already put the vCPU back in its reset state: its registers tell nothing,
            // its last exits tell how far the guest had got.
            m_context.exits->report(
                {VmExitReason::Crash,
                 fmt::format("vCPU {} triple fault (KVM_EXIT_SHUTDOWN) after {}", m_vcpu.id(), m_history.describe())});
            return false;
        case KVM_EXIT_SYSTEM_EVENT:
            switch (run->system_event.type) {
                case KVM_SYSTEM_EVENT_SHUTDOWN:
                    m_context.exits->report({VmExitReason::PowerOff, "system event: shutdown"});
                    return false;
                case KVM_SYSTEM_EVENT_RESET:
                    m_context.exits->report({VmExitReason::Reset, "system event: reset"});
                    return false;
                default:
                    m_context.exits->report(
                        {VmExitReason::Crash,
                         fmt::format("vCPU {}: system event {}", m_vcpu.id(), run->system_event.type)});
                    return false;
            }
        case KVM_EXIT_FAIL_ENTRY:
            m_context.exits->report(
                {VmExitReason::Failure,
                 fmt::format("vCPU {}: KVM could not enter the guest (reason 0x{:x}); {}", m_vcpu.id(),
                             run->fail_entry.hardware_entry_failure_reason, register_summary(m_vcpu))});
            return false;
        case KVM_EXIT_INTERNAL_ERROR:
            m_context.exits->report(
                {VmExitReason::Failure,
                 fmt::format("vCPU {}: KVM internal error (suberror {}); {}", m_vcpu.id(),
                             run->internal.suberror, register_summary(m_vcpu))});
            return false;
        case KVM_EXIT_INTR:
            return true;
        default:
            m_context.exits->report(
                {VmExitReason::Failure,
                 fmt::format("vCPU {}: unexpected KVM exit reason {}", m_vcpu.id(), run->exit_reason)});
            return false;
    }
}

}  // namespace corral::vmm
