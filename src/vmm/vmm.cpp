#include "vmm/vmm.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <array>
#include <chrono>

#include "base/log.h"
#include "vmm/devices/legacy/serial.h"

namespace corral::vmm {

Vmm::~Vmm() { stop_vcpus(); }

void Vmm::stop_vcpus() {
    for (auto& vcpu : m_vcpus) vcpu->request_stop();
    for (auto& vcpu : m_vcpus) vcpu->join();
}

void Vmm::pump_console_input() {
    if (!m_console) return;
    if (m_pending_input.empty()) {
        std::array<uint8_t, 1024> buffer;
        size_t length = 0;
        auto status = m_console->read_input(buffer, length);
        if (status == StdioConsole::InputStatus::QuitRequested) {
            m_exits.report({VmExitReason::Stopped, "console escape (Ctrl-A x)"});
            return;
        }
        m_pending_input.assign(buffer.begin(), buffer.begin() + static_cast<long>(length));
    }
    size_t accepted = m_serial->enqueue_input(m_pending_input);
    m_pending_input.erase(m_pending_input.begin(), m_pending_input.begin() + static_cast<long>(accepted));
}

Result<VmExit> Vmm::run() {
    // SIGTERM/SIGINT/SIGHUP are read from a signalfd on this thread; vCPU threads inherit the
    // mask, so no guest thread is interrupted by them.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    sigaddset(&signals, SIGRTMIN);  // the vCPU kick signal: only vCPU threads take it
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    sigdelset(&signals, SIGRTMIN);
    int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd < 0) return fail_errno("signalfd");
    UniqueFd signal_owner(signal_fd);

    VcpuRunner::install_kick_signal_handler();
    for (auto& vcpu : m_vcpus) vcpu->start();

    while (!m_exits.exit()) {
        std::array<pollfd, 3> fds{};
        fds[0] = {m_exits.event_fd(), POLLIN, 0};
        fds[1] = {signal_fd, POLLIN, 0};
        // While the guest's receive buffer is full, stop reading stdin: back-pressure, not loss.
        bool want_input = m_console && m_console->input_fd() >= 0 && m_pending_input.empty();
        fds[2] = {want_input ? m_console->input_fd() : -1, POLLIN, 0};
        int timeout_ms = m_pending_input.empty() ? 1000 : 10;
        int ready = ::poll(fds.data(), fds.size(), timeout_ms);
        if (ready < 0 && errno != EINTR) return fail_errno("poll");

        if (fds[1].revents & POLLIN) {
            signalfd_siginfo info{};
            if (::read(signal_fd, &info, sizeof info) == sizeof info) {
                log_info("received signal {}; stopping the VM", info.ssi_signo);
                m_exits.report({VmExitReason::Stopped, fmt::format("signal {}", info.ssi_signo)});
            }
        }
        if (fds[2].revents & (POLLIN | POLLHUP) || !m_pending_input.empty()) pump_console_input();
    }
    stop_vcpus();
    return *m_exits.exit();
}

}  // namespace corral::vmm
