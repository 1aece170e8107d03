#include "vmm/vmm.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/log.h"
#include "base/signal_mask.h"
#include "vmm/control/balloon_answer.h"
#include "vmm/control/control_server.h"
#include "vmm/control/device_counters.h"
#include "vmm/control/io_limits.h"
#include "vmm/control/screenshot.h"
#include "vmm/devices/legacy/i8042.h"
#include "vmm/devices/legacy/serial.h"
#include "vmm/pci_setup.h"

namespace corral::vmm {

Vmm::~Vmm() { stop_vcpus(); }

void Vmm::stop_vcpus() {
    for (auto& vcpu : m_vcpus) vcpu->request_stop();
    for (auto& vcpu : m_vcpus) vcpu->join();
}

void Vmm::pump_console_input() {
    if (m_socket_console) {
        if (m_pending_input.empty()) {
            std::array<uint8_t, 1024> buffer;
            size_t length = m_socket_console->read_input(buffer);
            m_pending_input.assign(buffer.begin(), buffer.begin() + static_cast<long>(length));
        }
    } else if (!m_console) {
        return;
    } else if (m_pending_input.empty()) {
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

void Vmm::request_shutdown(const std::string& why) {
    uint32_t timeout = m_config.shutdown_timeout_seconds;
    if (m_shutdown_deadline || timeout == 0 || !m_i8042) {
        log_info("received {}; stopping the VM", why);
        m_exits.report({VmExitReason::Stopped, why});
        return;
    }
    // A paused guest cannot answer Ctrl-Alt-Del: let it run for its shutdown.
    if (m_paused) resume_vcpus();
    // Firecracker's SendCtrlAltDel: Linux's keyboard layer turns the keys into ctrl_alt_del(),
    // which restarts the kernel at once (the default) or signals init (systemd reboots
    // cleanly). Either way the guest resets, and that ends the VM (see run()).
    log_info("received {}; asking the guest to shut down (Ctrl-Alt-Del); stopping it in {} s", why,
             timeout);
    if (!m_i8042->send_ctrl_alt_del())
        log_warning("the guest's keyboard is not enabled or not reading; the guest will be stopped in {} s",
                    timeout);
    m_shutdown_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout);
}

bool Vmm::pause_vcpus() {
    for (auto& vcpu : m_vcpus) vcpu->request_pause();
    // vCPUs leave KVM_RUN within microseconds of the kick; an exit handler never blocks long.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    bool all = true;
    for (auto& vcpu : m_vcpus) all = vcpu->wait_parked(deadline) && all;
    return all;
}

void Vmm::resume_vcpus() {
    for (auto& vcpu : m_vcpus) vcpu->resume();
    m_paused = false;
}

std::string Vmm::handle_control(const ControlRequest& request, const ControlServer& control) {
    using nlohmann::json;
    auto ok = [](json answer = json::object()) {
        answer["ok"] = true;
        return answer.dump();
    };
    switch (request.action) {
        case ControlAction::Status: {
            auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                                control.started());
            return ok({{"state", m_paused ? "paused" : "running"},
                       {"vcpus", m_vcpus.size()},
                       {"uptime_ms", uptime.count()}});
        }
        case ControlAction::Pause:
            if (m_paused) return ok({{"state", "paused"}});
            if (!pause_vcpus()) {
                resume_vcpus();
                return control_error_answer("the vCPUs did not stop within 5 s; the VM keeps running");
            }
            m_paused = true;
            log_info("paused (control request)");
            return ok({{"state", "paused"}});
        case ControlAction::Resume:
            if (m_paused) log_info("resumed (control request)");
            resume_vcpus();
            return ok({{"state", "running"}});
        case ControlAction::Shutdown:
            request_shutdown("a control shutdown request");
            return ok();
        case ControlAction::Stop:
            log_info("stopping the VM (control request)");
            m_exits.report({VmExitReason::Stopped, "control stop request"});
            return ok();
        case ControlAction::Counters:
            return ok({{"devices", device_counters_json(m_pci.get())}});
        case ControlAction::Reset:
            // The reset is the guest-reboot path: run() returns Reset and main() builds the VM
            // again. Without --on-reboot restart that would end the VM, which is not a reset.
            if (m_config.on_reboot != RebootAction::Restart)
                return control_error_answer("reset is not supported without --on-reboot restart");
            // A reset replaces a shutdown request the guest has not answered (corrald's graceful
            // reboot resets a guest that did not shut down in time): forget its deadline, or
            // run() would take this reset for the guest's answer and end the VM.
            if (m_shutdown_deadline) log_info("resetting the VM instead of waiting for its shutdown");
            m_shutdown_deadline.reset();
            log_info("resetting the VM (control request)");
            m_exits.report({VmExitReason::Reset, "control reset request"});
            return ok();
        case ControlAction::Snapshot: {
            if (m_shutdown_deadline) return control_error_answer("the VM is shutting down");
            auto taken = snapshot(request.snapshot_dir, request.resume);
            if (!taken) return control_error_answer(taken.error().describe());
            return ok(*taken);
        }
        case ControlAction::Balloon:
            return balloon_answer(m_pci ? m_pci->balloon.get() : nullptr, m_config.memory_bytes,
                                  request.balloon_target_bytes);
        case ControlAction::DiskSnapshot: {
            if (m_shutdown_deadline)
                return control_error_answer("the VM is shutting down");
            auto taken =
                disk_snapshot(request.disk_snapshot_tag, request.disk_snapshot_delete, request.disk_snapshot_bitmap);
            if (!taken)
                return control_error_answer(taken.error().describe());
            return ok(*taken);
        }
        case ControlAction::Limits:
            apply_io_limits(m_pci.get(), request.limits);
            return ok();
        case ControlAction::Screenshot:
            // Encoded on this thread (tens of ms for a full HD screen): the guest runs on meanwhile.
            return screenshot_answer(m_pci ? m_pci->framebuffer.get() : nullptr);
        case ControlAction::Migrate: {
            if (m_shutdown_deadline) return control_error_answer("the VM is shutting down");
            // Runs on this thread until done: other control requests and stop signals wait
            // (timeout_s bounds how long); the guest runs on meanwhile.
            auto moved = migrate(request);
            if (!moved) {
                log_warning("{}", moved.error().describe());
                return control_error_answer(moved.error().describe());
            }
            return ok(*moved);
        }
    }
    return control_error_answer("unknown action");
}

Result<VmExit> Vmm::run(ControlServer* control) {
    // SIGTERM/SIGINT/SIGHUP are read from a signalfd on this thread; vCPU threads inherit the
    // mask, so no guest thread is interrupted by them.
    sigset_t signals = stop_signals();
    sigaddset(&signals, SIGRTMIN);  // the vCPU kick signal: only vCPU threads take it
    block_signals(signals);
    sigdelset(&signals, SIGRTMIN);
    int signal_fd = ::signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (signal_fd < 0) return fail_errno("signalfd");
    UniqueFd signal_owner(signal_fd);

    VcpuRunner::install_kick_signal_handler();
    for (auto& vcpu : m_vcpus) vcpu->start();

    std::vector<pollfd> fds;
    while (!m_exits.exit()) {
        fds.assign(4, pollfd{});
        fds[0] = {m_exits.event_fd(), POLLIN, 0};
        fds[1] = {signal_fd, POLLIN, 0};
        // While the guest's receive buffer is full, stop reading input: back-pressure, not loss.
        int input_fd = m_socket_console ? m_socket_console->client_fd()
                       : m_console      ? m_console->input_fd()
                                        : -1;
        fds[2] = {m_pending_input.empty() ? input_fd : -1, POLLIN, 0};
        fds[3] = {m_socket_console ? m_socket_console->listen_fd() : -1, POLLIN, 0};
        if (control) control->add_poll_fds(fds);
        int timeout_ms = m_pending_input.empty() ? 1000 : 10;
        if (m_shutdown_deadline) {
            auto left = std::chrono::ceil<std::chrono::milliseconds>(
                *m_shutdown_deadline - std::chrono::steady_clock::now());
            timeout_ms = static_cast<int>(std::clamp<int64_t>(left.count(), 0, timeout_ms));
        }
        int ready = ::poll(fds.data(), fds.size(), timeout_ms);
        if (ready < 0 && errno != EINTR) return fail_errno("poll");

        if (fds[1].revents & POLLIN) {
            signalfd_siginfo info{};
            if (::read(signal_fd, &info, sizeof info) == sizeof info)
                request_shutdown(fmt::format("signal {}", info.ssi_signo));
        }
        if (m_shutdown_deadline && std::chrono::steady_clock::now() >= *m_shutdown_deadline) {
            m_exits.report({VmExitReason::Stopped,
                            fmt::format("guest did not shut down within {} s",
                                        m_config.shutdown_timeout_seconds)});
        }
        if (fds[3].revents & POLLIN) m_socket_console->accept_client();
        if (fds[2].revents & (POLLIN | POLLHUP) || !m_pending_input.empty()) pump_console_input();
        if (control && !m_exits.exit())
            control->service(std::span(fds).subspan(4),
                             [&](const ControlRequest& request) { return handle_control(request, *control); });
    }
    stop_vcpus();
    VmExit exit = *m_exits.exit();
    // The reset answers our Ctrl-Alt-Del: the host asked for the VM to go, so main() must not
    // boot it again under --on-reboot restart.
    if (m_shutdown_deadline && exit.reason == VmExitReason::Reset)
        exit = {VmExitReason::Stopped, fmt::format("{} after the shutdown request", exit.detail)};
    return exit;
}

}  // namespace corral::vmm
