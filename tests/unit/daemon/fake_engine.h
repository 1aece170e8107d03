#pragma once

// A fake engine for unit tests of the VM lifecycle (VmManager): "processes" that a test starts,
// crashes and powers off at will, so every path of the lifecycle runs in milliseconds and without
// QEMU. Everything around it stays real (SQLite inventory, storage pools, tasks, the exit
// watcher); end-to-end tests run the real engines.

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "base/event_fd.h"
#include "engine/engine.h"

namespace corral::daemon::testing {

/// What a fake guest does when asked to shut down.
enum class GuestShutdown { PowersOff, Ignores };

/// One fake VM process. Every Instance handling it (the one launch() made, and the one adopt()
/// makes for a restarted corrald) shares it, as a real VM outlives corrald.
class FakeProcess {
public:
    explicit FakeProcess(engine::LaunchSpec spec);

    /// Ends the process: records how (in RUN_DIR/exit.json too, as corral-shim does) and makes
    /// the exit fd readable for good, like a pidfd. A second end is ignored.
    void end(int exit_code, int signal = 0);
    bool ended() const;
    std::optional<engine::ExitInfo> exit_info() const;
    int exit_fd() const { return m_exit.fd(); }

    engine::RunState run_state() const;
    void set_run_state(engine::RunState state);
    GuestShutdown shutdown_behaviour() const;
    void set_shutdown_behaviour(GuestShutdown behaviour);
    int resets() const;
    void count_reset();

    const engine::LaunchSpec& spec() const { return m_spec; }

private:
    engine::LaunchSpec m_spec;
    EventFd m_exit;
    mutable std::mutex m_mutex;
    std::optional<engine::ExitInfo> m_exit_info;
    engine::RunState m_state = engine::RunState::Running;
    GuestShutdown m_shutdown = GuestShutdown::PowersOff;
    int m_resets = 0;
};

/// The fake host that fake engines run processes on: shared by every FakeEngine a test makes
/// (one per VmManager, since a VmManager owns its engines), so a second VmManager (a restarted
/// corrald) finds the first one's processes.
class FakeHost {
public:
    /// Every process launched, oldest first.
    std::vector<std::shared_ptr<FakeProcess>> launched() const;
    /// The newest process launched for `vm`; nullptr when none was.
    std::shared_ptr<FakeProcess> latest(const std::string& vm) const;
    size_t launch_count(const std::string& vm) const;

    /// Makes the next launch fail with `error` (once).
    void fail_next_launch(Error error);
    /// What FakeEngine::availability() reports.
    void set_availability(engine::Availability availability);
    engine::Availability availability() const;

    Result<std::shared_ptr<FakeProcess>> launch(const engine::LaunchSpec& spec);
    /// The live process whose run folder is `run_dir`; ENOENT when none (or it ended).
    Result<std::shared_ptr<FakeProcess>> find(const std::filesystem::path& run_dir) const;

private:
    mutable std::mutex m_mutex;
    std::vector<std::shared_ptr<FakeProcess>> m_processes;
    std::optional<Error> m_launch_error;
    engine::Availability m_availability{true, "fake"};
};

/// An engine::Engine whose VMs are FakeProcesses on `host`.
class FakeEngine final : public engine::Engine {
public:
    FakeEngine(std::shared_ptr<FakeHost> host, std::string name) : m_host(std::move(host)), m_name(std::move(name)) {}

    std::string name() const override { return m_name; }
    engine::Availability availability() const override { return m_host->availability(); }
    Result<std::unique_ptr<engine::Instance>> launch(const engine::LaunchSpec& spec) override;
    Result<std::unique_ptr<engine::Instance>> adopt(const std::filesystem::path& run_dir) override;

private:
    std::shared_ptr<FakeHost> m_host;
    std::string m_name;
};

}  // namespace corral::daemon::testing
