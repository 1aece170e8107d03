#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <pthread.h>
#include <thread>

#include "vmm/exit_history.h"
#include "vmm/kvm/vcpu.h"

namespace corral::vmm {

class Bus;
class ExitLatch;
class UnhandledAccessLog;

/// What a vCPU thread needs from the rest of the VM.
struct VcpuContext {
    const Bus* pio_bus;
    const Bus* mmio_bus;
    ExitLatch* exits;
    UnhandledAccessLog* unhandled;
};

/// Runs one vCPU on its own thread: KVM_RUN, then handles the exit (port I/O and MMIO go to the
/// buses; shutdown, system events and errors end the VM through the ExitLatch).
/// Stopping sets kvm_run.immediate_exit and kicks the thread out of KVM_RUN with a signal.
/// Pausing does the same, and the thread then parks on a condition variable (between exits,
/// never inside one) until resume() or request_stop().
class VcpuRunner {
public:
    VcpuRunner(kvm::Vcpu vcpu, VcpuContext context);
    VcpuRunner(const VcpuRunner&) = delete;
    VcpuRunner& operator=(const VcpuRunner&) = delete;
    /// Stops and joins the thread.
    ~VcpuRunner();

    /// Installs the (empty) handler of the kick signal; call once before starting any vCPU.
    static void install_kick_signal_handler();

    const kvm::Vcpu& vcpu() const { return m_vcpu; }
    void start();
    /// Asks the thread to leave KVM_RUN and return; does not wait.
    void request_stop();
    void join();

    /// Asks the thread to leave KVM_RUN and park; does not wait (see wait_parked()).
    void request_pause();
    /// Waits until the thread is parked or has ended; false if `deadline` passed first.
    bool wait_parked(std::chrono::steady_clock::time_point deadline);
    /// Lets a parked (or about to park) thread run the guest again.
    void resume();

private:
    /// Parks until resume() or request_stop(); called by the thread between two KVM_RUNs.
    void park();

    void thread_main();
    /// Handles one exit; false when the vCPU must stop running.
    bool handle_exit();

    kvm::Vcpu m_vcpu;
    VcpuContext m_context;
    ExitHistory m_history;  // this thread's own; said on a triple fault
    std::atomic<bool> m_stop{false};
    std::atomic<bool> m_pause_requested{false};
    std::mutex m_park_mutex;  // guards m_parked and m_finished; waits on m_park_changed
    std::condition_variable m_park_changed;
    bool m_parked = false;
    bool m_finished = false;  // thread_main() returned (the VM is ending)
    std::thread m_thread;
};

}  // namespace corral::vmm
