#include "engine/shim_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/signal_mask.h"
#include "engine/process.h"

extern char** environ;

namespace corral::engine {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr size_t k_log_tail_lines = 8;
constexpr auto k_vm_pid_timeout = 10s;

/// The process's argv, split at NULs; empty when it is gone.
std::vector<std::string> process_cmdline(pid_t pid) {
    auto text = read_text_file(fmt::format("/proc/{}/cmdline", pid));
    std::vector<std::string> args;
    if (!text)
        return args;
    size_t start = 0;
    while (start < text->size()) {
        size_t end = text->find('\0', start);
        if (end == std::string::npos)
            end = text->size();
        args.push_back(text->substr(start, end - start));
        start = end + 1;
    }
    return args;
}

pid_t parent_of(pid_t pid) {
    auto text = read_text_file(fmt::format("/proc/{}/stat", pid));
    if (!text)
        return -1;
    // pid (comm) state ppid ...: comm may hold spaces and parentheses, so parse after the last ')'.
    size_t close = text->rfind(')');
    if (close == std::string::npos)
        return -1;
    int ppid = -1;
    char state = 0;
    if (std::sscanf(text->c_str() + close + 1, " %c %d", &state, &ppid) != 2)
        return -1;
    return ppid;
}

bool same_dir(const fs::path& a, const fs::path& b) {
    std::error_code ec;
    return fs::equivalent(a, b, ec);
}

}  // namespace

Result<ExitInfo> read_exit_info(const fs::path& run_dir, const ExitCodeDescriber& describe) {
    auto text = read_text_file(run_dir / run_files::k_exit_json);
    std::string tail = tail_lines(run_dir / run_files::k_monitor_log, k_log_tail_lines);
    if (!text) {
        ExitInfo info;
        info.reason = "the VM's supervisor (corral-shim) ended without recording how the VM ended";
        if (!tail.empty())
            info.reason += ": " + tail;
        return info;
    }
    auto json = nlohmann::json::parse(*text, nullptr, false);
    if (json.is_discarded() || !json.is_object())
        return fail(
            fmt::format("{} is not valid JSON", (run_dir / run_files::k_exit_json).string()),
            EINVAL);
    ExitInfo info;
    info.exit_code = json.value("exit_code", -1);
    info.signal = json.value("signal", 0);
    if (info.signal != 0) {
        info.exit_code = -1;
        info.reason =
            fmt::format("killed by signal {} ({})", info.signal, signal_name(info.signal));
    } else if (info.exit_code == 127) {
        info.reason = "could not execute the VM process";
        if (!tail.empty())
            info.reason += ": " + tail;
    } else if (describe) {
        info.reason = describe(info.exit_code, tail);
    } else {
        info.reason = fmt::format("exited with code {}", info.exit_code);
    }
    return info;
}

Result<ShimProcess> ShimProcess::spawn(const fs::path& shim, const fs::path& run_dir,
                                       const std::vector<std::string>& command,
                                       const ExitCodeDescriber& describe,
                                       const SpawnOptions& options) {
    if (!is_executable(shim))
        return fail(
            fmt::format("corral-shim not found at {} (build it, or install it beside corrald)",
                        shim.string()),
            ENOENT);
    std::error_code ec;
    fs::create_directories(run_dir, ec);
    if (ec)
        return fail(
            fmt::format("cannot create run directory {}: {}", run_dir.string(), ec.message()),
            ec.value());
    for (const char* stale : {run_files::k_exit_json, run_files::k_vm_pid, run_files::k_shim_pid,
                              run_files::k_console_socket, run_files::k_qmp_socket}) {
        bool socket = stale == run_files::k_console_socket || stale == run_files::k_qmp_socket;
        if (!(socket && options.sockets_prepared))
            fs::remove(run_dir / stale, ec);
    }
    fs::path log_path = run_dir / run_files::k_monitor_log;
    UniqueFd log_fd(
        ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!log_fd.valid())
        return fail_errno(fmt::format("cannot create {}", log_path.string()));
    UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!null_fd.valid())
        return fail_errno("open /dev/null");

    // Prepared before fork: between fork and exec only async-signal-safe calls (corrald has
    // threads).
    std::vector<std::string> args = {shim.string(), run_dir.string()};
    if (!options.fds.empty()) {
        args.push_back("--fds");
        args.push_back(std::to_string(options.fds.size()));
    }
    if (options.switch_user) {
        args.push_back("--user");
        args.push_back(fmt::format("{}:{}", options.uid, options.gid));
    }
    args.push_back("--");
    args.insert(args.end(), command.begin(), command.end());
    std::vector<char*> argv;
    for (auto& arg : args)
        argv.push_back(arg.data());
    argv.push_back(nullptr);

    std::vector<int> high_fds(options.fds.size(), -1);  // scratch for the child (no malloc there)

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
        return fail_errno("pipe2");
    UniqueFd pid_read(pipe_fds[0]);
    UniqueFd pid_write(pipe_fds[1]);

    pid_t middle = ::fork();
    if (middle < 0)
        return fail_errno("fork");
    if (middle == 0) {
        // Double fork: the middle process starts a new session and exits at once, so the shim
        // is adopted by init (or a subreaper) and no signal to corrald's process group or
        // session reaches it.
        ::setsid();
        pid_t shim_pid = ::fork();
        if (shim_pid == 0) {
            clear_signal_mask();
            ::dup2(null_fd.get(), 0);
            ::dup2(log_fd.get(), 1);
            ::dup2(log_fd.get(), 2);
            // The handed descriptors go to 3, 4, ...: first above every target (so that none
            // is overwritten before it moved), then into place; dup2 clears close-on-exec.
            const size_t count = options.fds.size();
            for (size_t i = 0; i < count; ++i) {
                high_fds[i] = ::fcntl(options.fds[i], F_DUPFD_CLOEXEC, static_cast<int>(3 + count));
                if (high_fds[i] < 0)
                    _exit(127);
            }
            for (size_t i = 0; i < count; ++i) {
                if (::dup2(high_fds[i], static_cast<int>(3 + i)) < 0)
                    _exit(127);
            }
            ::close_range(static_cast<unsigned>(3 + count), ~0U, 0);
            ::execve(argv[0], argv.data(), environ);
            static const char message[] = "corral-engine: cannot execute corral-shim\n";
            [[maybe_unused]] auto ignored = ::write(2, message, sizeof(message) - 1);
            _exit(127);
        }
        [[maybe_unused]] auto ignored = ::write(pid_write.get(), &shim_pid, sizeof(shim_pid));
        _exit(shim_pid < 0 ? 1 : 0);
    }
    pid_write.reset();
    int status = 0;
    while (::waitpid(middle, &status, 0) < 0 && errno == EINTR) {
    }
    pid_t shim_pid = -1;
    ssize_t got;
    do {
        got = ::read(pid_read.get(), &shim_pid, sizeof(shim_pid));
    } while (got < 0 && errno == EINTR);
    if (got != sizeof(shim_pid) || shim_pid <= 0)
        return fail("could not start corral-shim (fork failed)", EAGAIN);

    auto pidfd = open_pidfd(shim_pid);
    if (!pidfd) {
        // It has already ended and been reaped by init: report what it left behind.
        auto info = read_exit_info(run_dir, describe);
        return fail(fmt::format("the VM process ended right after start: {}",
                                info ? info->reason : tail_lines(log_path, k_log_tail_lines)),
                    ECHILD);
    }
    ShimProcess process(run_dir, shim_pid, std::move(*pidfd), describe);

    // Wait for vm.pid (the shim writes it right after fork) or the shim's end.
    auto deadline = std::chrono::steady_clock::now() + k_vm_pid_timeout;
    for (;;) {
        auto vm_pid = read_pid_file(run_dir / run_files::k_vm_pid);
        if (vm_pid) {
            process.m_vm_pid = *vm_pid;
            if (auto fd = open_pidfd(*vm_pid))
                process.m_vm_pidfd = std::move(*fd);
            break;
        }
        if (process.wait_exit(20ms)) {
            auto info = TRY(process.exit_info());
            return fail(fmt::format("the VM process ended right after start: {}", info.reason),
                        ECHILD);
        }
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(shim_pid, SIGKILL);
            return fail(
                fmt::format(
                    "corral-shim did not start the VM process within {} s",
                    std::chrono::duration_cast<std::chrono::seconds>(k_vm_pid_timeout).count()),
                ETIMEDOUT);
        }
    }
    return process;
}

Result<ShimProcess> ShimProcess::attach(const fs::path& run_dir,
                                        const ExitCodeDescriber& describe) {
    auto gone = [&](const std::string& why) -> std::unexpected<Error> {
        std::string prefix = fmt::format("the VM in {} is not running", run_dir.string());
        if (fs::exists(run_dir / run_files::k_exit_json)) {
            if (auto info = read_exit_info(run_dir, describe))
                return fail(fmt::format("{}: it ended: {}", prefix, info->reason), ENOENT);
        }
        return fail(fmt::format("{}: {}", prefix, why), ENOENT);
    };
    // exit.json first: a shim that just wrote it may still be a zombie with our pid.
    if (fs::exists(run_dir / run_files::k_exit_json))
        return gone("the VM process has ended");
    auto shim_pid = read_pid_file(run_dir / run_files::k_shim_pid);
    if (!shim_pid)
        return gone("no shim.pid");
    auto pidfd = open_pidfd(*shim_pid);
    if (!pidfd)
        return gone(fmt::format("its corral-shim (pid {}) has ended", *shim_pid));
    // The pid may have been reused since: it must be a corral-shim for this very run_dir.
    auto args = process_cmdline(*shim_pid);
    if (args.size() < 3 || fs::path(args[0]).filename() != "corral-shim" ||
        !same_dir(args[1], run_dir))
        return gone(fmt::format("pid {} is no longer its corral-shim", *shim_pid));
    ShimProcess process(run_dir, *shim_pid, std::move(*pidfd), describe);
    if (process.exited() || fs::exists(run_dir / run_files::k_exit_json))
        return gone("the VM process has ended");

    auto vm_pid = read_pid_file(run_dir / run_files::k_vm_pid);
    if (!vm_pid)
        return gone("no vm.pid");
    auto vm_pidfd = open_pidfd(*vm_pid);
    if (!vm_pidfd || parent_of(*vm_pid) != *shim_pid)
        return gone("the VM process has ended");
    process.m_vm_pid = *vm_pid;
    process.m_vm_pidfd = std::move(*vm_pidfd);
    return process;
}

bool ShimProcess::exited() const {
    if (!pidfd_ended(m_pidfd.get()))
        return false;
    reap_if_child(m_pidfd.get());
    return true;
}

bool ShimProcess::wait_exit(std::chrono::milliseconds timeout) const {
    pollfd pfd{m_pidfd.get(), POLLIN, 0};
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        int n = ::poll(&pfd, 1, left.count() > 0 ? static_cast<int>(left.count()) : 0);
        if (n > 0)
            break;
        if (n == 0)
            return false;
        if (errno != EINTR)
            return false;
    }
    reap_if_child(m_pidfd.get());
    return true;
}

Result<ExitInfo> ShimProcess::exit_info() const {
    if (!exited())
        return fail(fmt::format("the VM process (pid {}) is still running", m_vm_pid), EBUSY);
    return read_exit_info(m_run_dir, m_describe);
}

Error ShimProcess::gone_error(const std::string& what) const {
    std::string message = fmt::format("cannot {}: the VM is not running", what);
    if (exited()) {
        if (auto info = exit_info())
            message += fmt::format(" (it ended: {})", info->reason);
    }
    return Error(message, ENOENT);
}

Result<void> ShimProcess::signal_vm(int signal) const {
    if (!m_vm_pidfd.valid() || exited())
        return fail(gone_error(fmt::format("send {}", signal_name(signal))));
    if (::syscall(SYS_pidfd_send_signal, m_vm_pidfd.get(), signal, nullptr, 0) != 0) {
        if (errno == ESRCH)
            return fail(gone_error(fmt::format("send {}", signal_name(signal))));
        return fail_errno(
            fmt::format("sending {} to the VM process (pid {})", signal_name(signal), m_vm_pid));
    }
    return {};
}

}  // namespace corral::engine
