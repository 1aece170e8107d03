#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "engine/engine.h"

namespace corral::engine {

/// The files a VM's run_dir holds (shared by the shim, both engines and adopt()).
namespace run_files {
inline constexpr const char* k_monitor_log =
    "monitor.log";  ///< stdout/stderr of shim and VM process
inline constexpr const char* k_shim_pid = "shim.pid";
inline constexpr const char* k_vm_pid = "vm.pid";
inline constexpr const char* k_exit_json = "exit.json";  ///< {"exit_code":N,"signal":S}
inline constexpr const char* k_console_socket = "console.sock";
inline constexpr const char* k_console_log = "console.log";
inline constexpr const char* k_qmp_socket = "qmp.sock";
}  // namespace run_files

/// Turns an exit code of the VM process into a sentence ("guest powered off"); engine-specific.
using ExitCodeDescriber = std::function<std::string(int exit_code, const std::string& log_tail)>;

/// How corral-shim starts the VM process (see shim_main.cpp).
struct SpawnOptions {
    /// Descriptors the VM process gets as fds 3, 4, ... (every other one is closed).
    std::vector<int> fds;
    /// Switch to this uid/gid (no supplementary groups) before executing the command.
    bool switch_user = false;
    uid_t uid = 0;
    gid_t gid = 0;
    /// The caller bound RUN_DIR's console/QMP sockets itself (handed over in `fds`): spawn()
    /// must not remove them as stale.
    bool sockets_prepared = false;
};

/// A VM process running under a detached corral-shim, seen through the shim's pidfd.
class ShimProcess {
public:
    /// Starts `shim RUN_DIR -- command...` in its own session, detached by a double fork (not
    /// our child, so it survives us and needs no reaping), truncating RUN_DIR/monitor.log and
    /// removing stale pid, exit and socket files first. Returns once the shim wrote vm.pid (or
    /// ended: then the error has the tail of monitor.log). The shim always executes the command
    /// with no_new_privs and no capabilities, in RUN_DIR as working folder; `options` hands it
    /// descriptors and a user.
    static Result<ShimProcess> spawn(const std::filesystem::path& shim,
                                     const std::filesystem::path& run_dir,
                                     const std::vector<std::string>& command,
                                     const ExitCodeDescriber& describe,
                                     const SpawnOptions& options = {});
    /// Re-attaches to the shim recorded in RUN_DIR/shim.pid. ENOENT when it is no longer
    /// running (the error says how the VM ended, if exit.json tells).
    static Result<ShimProcess> attach(const std::filesystem::path& run_dir,
                                      const ExitCodeDescriber& describe);

    pid_t shim_pid() const { return m_shim_pid; }
    pid_t vm_pid() const { return m_vm_pid; }
    int pidfd() const { return m_pidfd.get(); }
    const std::filesystem::path& run_dir() const { return m_run_dir; }

    /// Non-blocking; reaps the shim if it happens to be our child.
    bool exited() const;
    /// Waits up to `timeout` for the shim to end; true when it did.
    bool wait_exit(std::chrono::milliseconds timeout) const;
    /// After exit: what exit.json says, with a reason. EBUSY while running.
    Result<ExitInfo> exit_info() const;
    /// The error to return when the VM ended while we expected it to run (ENOENT).
    Error gone_error(const std::string& what) const;
    /// Sends `signal` to the VM process; ENOENT when it has ended.
    Result<void> signal_vm(int signal) const;

private:
    ShimProcess(std::filesystem::path run_dir, pid_t shim_pid, UniqueFd pidfd,
                ExitCodeDescriber describe)
        : m_run_dir(std::move(run_dir)),
          m_shim_pid(shim_pid),
          m_pidfd(std::move(pidfd)),
          m_describe(std::move(describe)) {}

    std::filesystem::path m_run_dir;
    pid_t m_shim_pid = -1;
    pid_t m_vm_pid = -1;
    UniqueFd m_pidfd;     // the shim's
    UniqueFd m_vm_pidfd;  // the VM process's: signals never reach a recycled pid
    ExitCodeDescriber m_describe;
};

/// Reads RUN_DIR/exit.json into an ExitInfo with a reason (signal name, or `describe`).
Result<ExitInfo> read_exit_info(const std::filesystem::path& run_dir,
                                const ExitCodeDescriber& describe);

}  // namespace corral::engine
