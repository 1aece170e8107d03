#include "engine/process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "base/private_file.h"
#include "base/signal_mask.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

extern char** environ;

namespace corral::engine {

Result<UniqueFd> open_pidfd(pid_t pid) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (fd < 0) {
        int saved = errno;
        if (saved == ESRCH)
            return fail(fmt::format("process {} is gone", pid), ENOENT);
        return fail(fmt::format("pidfd_open({}): {}", pid, ::strerror(saved)), saved);
    }
    // pidfd_open sets O_CLOEXEC itself (Linux 5.3+ pidfds are always close-on-exec).
    return UniqueFd(fd);
}

bool pidfd_ended(int pidfd) {
    pollfd pfd{pidfd, POLLIN, 0};
    for (;;) {
        int n = ::poll(&pfd, 1, 0);
        if (n >= 0)
            return n > 0;
        if (errno != EINTR)
            return false;
    }
}

void reap_if_child(int pidfd) {
    siginfo_t info{};
    // ECHILD when it is not our child (the usual case: the shim is detached); nothing to do.
    ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd), &info, WEXITED | WNOHANG);
}

Result<std::string> read_text_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return fail(fmt::format("cannot read {}", path.string()), errno ? errno : ENOENT);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

Result<void> write_file_atomic(const std::filesystem::path& path, std::string_view text) {
    return write_file_atomically(path.string(), text, 0600);
}

std::string tail_lines(const std::filesystem::path& path, size_t max_lines) {
    constexpr off_t k_window = 64 * 1024;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid())
        return {};
    off_t size = ::lseek(fd.get(), 0, SEEK_END);
    if (size < 0)
        return {};
    off_t start = size > k_window ? size - k_window : 0;
    std::string text(static_cast<size_t>(size - start), '\0');
    ssize_t n = ::pread(fd.get(), text.data(), text.size(), start);
    if (n < 0)
        return {};
    text.resize(static_cast<size_t>(n));

    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
            line.pop_back();
        if (!line.empty())
            lines.push_back(line);
    }
    size_t first = lines.size() > max_lines ? lines.size() - max_lines : 0;
    std::string result;
    for (size_t i = first; i < lines.size(); ++i) {
        if (!result.empty())
            result += '\n';
        result += lines[i];
    }
    return result;
}

Result<pid_t> read_pid_file(const std::filesystem::path& path) {
    auto text = TRY(read_text_file(path));
    char* end = nullptr;
    long value = std::strtol(text.c_str(), &end, 10);
    if (end == text.c_str() || value <= 0 || value > 0x7fffffff)
        return fail(fmt::format("{} does not hold a pid", path.string()), EINVAL);
    return static_cast<pid_t>(value);
}

std::string signal_name(int signal) {
    const char* abbrev = ::sigabbrev_np(signal);
    return abbrev ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", signal);
}

bool is_executable(const std::filesystem::path& path) {
    std::error_code ec;
    return std::filesystem::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0;
}

std::filesystem::path find_on_path(const std::string& program) {
    if (program.find('/') != std::string::npos)
        return is_executable(program) ? std::filesystem::path(program) : std::filesystem::path();
    const char* path_env = std::getenv("PATH");
    std::string path_list = path_env ? path_env : "/usr/local/bin:/usr/bin:/bin";
    std::istringstream in(path_list);
    for (std::string dir; std::getline(in, dir, ':');) {
        if (dir.empty())
            continue;
        std::filesystem::path candidate = std::filesystem::path(dir) / program;
        if (is_executable(candidate))
            return candidate;
    }
    return {};
}

Result<CapturedRun> run_capture(const std::vector<std::string>& argv,
                                std::chrono::milliseconds timeout,
                                const std::function<void(std::string_view line)>& on_line) {
    if (argv.empty())
        return fail("run_capture: no command", EINVAL);
    std::filesystem::path program = find_on_path(argv[0]);
    if (program.empty())
        return fail(fmt::format("{}: not found", argv[0]), ENOENT);

    // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
    std::vector<char*> args;
    for (const auto& arg : argv)
        args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    std::string program_string = program.string();

    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0)
        return fail_errno("pipe2");
    UniqueFd read_end(pipe_fds[0]);
    UniqueFd write_end(pipe_fds[1]);
    UniqueFd null_fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!null_fd.valid())
        return fail_errno("open /dev/null");

    pid_t pid = ::fork();
    if (pid < 0)
        return fail_errno("fork");
    if (pid == 0) {
        clear_signal_mask();
        ::dup2(null_fd.get(), 0);
        ::dup2(write_end.get(), 1);
        ::dup2(write_end.get(), 2);
        ::execve(program_string.c_str(), args.data(), environ);
        _exit(127);
    }
    write_end.reset();

    CapturedRun run;
    std::string pending;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            run.timed_out = true;
            ::kill(pid, SIGKILL);
            break;
        }
        pollfd pfd{read_end.get(), POLLIN, 0};
        int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        char chunk[4096];
        ssize_t got = ::read(read_end.get(), chunk, sizeof(chunk));
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;  // EOF: the child (and anything it forked holding the pipe) is done
        run.output.append(chunk, static_cast<size_t>(got));
        pending.append(chunk, static_cast<size_t>(got));
        for (size_t newline; (newline = pending.find('\n')) != std::string::npos;) {
            if (on_line)
                on_line(std::string_view(pending).substr(0, newline));
            pending.erase(0, newline + 1);
        }
    }
    if (on_line && !pending.empty())
        on_line(pending);

    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status)) {
        run.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        run.signal = WTERMSIG(status);
    }
    return run;
}

}  // namespace corral::engine
