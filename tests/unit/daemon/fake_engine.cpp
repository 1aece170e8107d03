#include "fake_engine.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <fstream>

#include <fmt/format.h>

#include "engine/shim_process.h"

namespace corral::daemon::testing {
namespace fs = std::filesystem;

namespace {

EventFd make_exit_fd() {
    auto fd = EventFd::create();
    if (!fd) throw std::runtime_error("eventfd: " + fd.error().describe());
    return std::move(*fd);
}

/// A handle on a FakeProcess, as engine::Instance.
class FakeInstance final : public engine::Instance {
public:
    explicit FakeInstance(std::shared_ptr<FakeProcess> process) : m_process(std::move(process)) {}

    // This test process stands in for the VM process: /proc has real numbers for it.
    pid_t pid() const override { return ::getpid(); }
    pid_t shim_pid() const override { return ::getpid(); }
    int exit_fd() const override { return m_process->exit_fd(); }
    bool exited() const override { return m_process->ended(); }
    Result<engine::ExitInfo> exit_info() const override {
        auto info = m_process->exit_info();
        if (!info) return fail("the VM is still running", EBUSY);
        return *info;
    }

    Result<void> pause() override {
        TRY_VOID(alive());
        m_process->set_run_state(engine::RunState::Paused);
        return {};
    }
    Result<void> resume() override {
        TRY_VOID(alive());
        m_process->set_run_state(engine::RunState::Running);
        return {};
    }
    Result<void> reset() override {
        TRY_VOID(alive());
        m_process->count_reset();
        return {};
    }
    Result<void> request_shutdown() override {
        TRY_VOID(alive());
        if (m_process->shutdown_behaviour() == GuestShutdown::PowersOff) m_process->end(0);
        return {};
    }
    Result<void> kill() override {
        TRY_VOID(alive());
        m_process->end(-1, SIGKILL);
        return {};
    }
    Result<engine::RunState> query() override {
        TRY_VOID(alive());
        return m_process->run_state();
    }
    Result<std::vector<engine::DiskCounters>> counters() override {
        std::vector<engine::DiskCounters> disks;
        for (size_t i = 0; i < m_process->spec().disks.size(); ++i)
            disks.push_back({fmt::format("disk{}", i), 4096 * (i + 1), 512 * (i + 1), i + 1, i + 1});
        return disks;
    }

    // Nothing listens there: the console relay keeps trying quietly, as while a real engine starts.
    fs::path console_socket() const override { return run_dir() / engine::run_files::k_console_socket; }
    fs::path console_log() const override { return {}; }
    const fs::path& run_dir() const override { return m_process->spec().run_dir; }

private:
    Result<void> alive() const {
        if (m_process->ended()) return fail(fmt::format("{} has ended", m_process->spec().name), ENOENT);
        return {};
    }
    std::shared_ptr<FakeProcess> m_process;
};

}  // namespace

FakeProcess::FakeProcess(engine::LaunchSpec spec) : m_spec(std::move(spec)), m_exit(make_exit_fd()) {}

void FakeProcess::end(int exit_code, int signal) {
    std::lock_guard lock(m_mutex);
    if (m_exit_info) return;
    engine::ExitInfo info;
    info.exit_code = signal != 0 ? -1 : exit_code;
    info.signal = signal;
    info.reason = signal != 0 ? fmt::format("killed by signal {} (SIG{})", signal, sigabbrev_np(signal))
                  : exit_code == 0 ? "guest powered off"
                                   : fmt::format("exited with code {}", exit_code);
    m_exit_info = info;
    // What corral-shim leaves for a corrald that was not running when the VM ended.
    std::ofstream(m_spec.run_dir / engine::run_files::k_exit_json)
        << fmt::format(R"({{"exit_code":{},"signal":{}}})", exit_code, signal);
    m_exit.signal();
}

bool FakeProcess::ended() const {
    std::lock_guard lock(m_mutex);
    return m_exit_info.has_value();
}

std::optional<engine::ExitInfo> FakeProcess::exit_info() const {
    std::lock_guard lock(m_mutex);
    return m_exit_info;
}

engine::RunState FakeProcess::run_state() const {
    std::lock_guard lock(m_mutex);
    return m_state;
}

void FakeProcess::set_run_state(engine::RunState state) {
    std::lock_guard lock(m_mutex);
    m_state = state;
}

GuestShutdown FakeProcess::shutdown_behaviour() const {
    std::lock_guard lock(m_mutex);
    return m_shutdown;
}

void FakeProcess::set_shutdown_behaviour(GuestShutdown behaviour) {
    std::lock_guard lock(m_mutex);
    m_shutdown = behaviour;
}

int FakeProcess::resets() const {
    std::lock_guard lock(m_mutex);
    return m_resets;
}

void FakeProcess::count_reset() {
    std::lock_guard lock(m_mutex);
    ++m_resets;
}

std::vector<std::shared_ptr<FakeProcess>> FakeHost::launched() const {
    std::lock_guard lock(m_mutex);
    return m_processes;
}

std::shared_ptr<FakeProcess> FakeHost::latest(const std::string& vm) const {
    std::lock_guard lock(m_mutex);
    for (auto it = m_processes.rbegin(); it != m_processes.rend(); ++it)
        if ((*it)->spec().name == vm) return *it;
    return nullptr;
}

size_t FakeHost::launch_count(const std::string& vm) const {
    std::lock_guard lock(m_mutex);
    size_t count = 0;
    for (const auto& process : m_processes) count += process->spec().name == vm;
    return count;
}

void FakeHost::fail_next_launch(Error error) {
    std::lock_guard lock(m_mutex);
    m_launch_error = std::move(error);
}

void FakeHost::set_availability(engine::Availability availability) {
    std::lock_guard lock(m_mutex);
    m_availability = std::move(availability);
}

engine::Availability FakeHost::availability() const {
    std::lock_guard lock(m_mutex);
    return m_availability;
}

Result<std::shared_ptr<FakeProcess>> FakeHost::launch(const engine::LaunchSpec& spec) {
    std::lock_guard lock(m_mutex);
    if (m_launch_error) {
        Error error = std::move(*m_launch_error);
        m_launch_error.reset();
        return fail(std::move(error));
    }
    auto process = std::make_shared<FakeProcess>(spec);
    m_processes.push_back(process);
    return process;
}

Result<std::shared_ptr<FakeProcess>> FakeHost::find(const fs::path& run_dir) const {
    std::lock_guard lock(m_mutex);
    for (const auto& process : m_processes)
        if (process->spec().run_dir == run_dir && !process->ended()) return process;
    return fail(fmt::format("no VM runs in {}", run_dir.string()), ENOENT);
}

Result<std::unique_ptr<engine::Instance>> FakeEngine::launch(const engine::LaunchSpec& spec) {
    auto process = TRY(m_host->launch(spec));
    return std::unique_ptr<engine::Instance>(std::make_unique<FakeInstance>(std::move(process)));
}

Result<std::unique_ptr<engine::Instance>> FakeEngine::adopt(const fs::path& run_dir) {
    auto process = TRY(m_host->find(run_dir));
    return std::unique_ptr<engine::Instance>(std::make_unique<FakeInstance>(std::move(process)));
}

}  // namespace corral::daemon::testing
