#include "process_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

namespace corral::testing {
namespace {

using Clock = std::chrono::steady_clock;

/// A pipe whose ends close themselves.
struct Pipe {
  int read_end = -1;
  int write_end = -1;
  Pipe() = default;
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
  ~Pipe() {
    close_read();
    close_write();
  }
  bool open() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return false;
    read_end = fds[0];
    write_end = fds[1];
    return true;
  }
  void close_read() {
    if (read_end >= 0) ::close(read_end);
    read_end = -1;
  }
  void close_write() {
    if (write_end >= 0) ::close(write_end);
    write_end = -1;
  }
};

std::string errno_text(const char* what, int error) {
  return std::string(what) + ": " + std::strerror(error);
}

/// In the child, between fork and exec: only async-signal-safe calls.
[[noreturn]] void exec_child(const std::vector<char*>& argv, int out_fd, int err_fd,
                             int status_fd) {
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd < 0 || ::dup2(null_fd, STDIN_FILENO) < 0 || ::dup2(out_fd, STDOUT_FILENO) < 0 ||
      ::dup2(err_fd, STDERR_FILENO) < 0) {
    int error = errno;
    (void)!::write(status_fd, &error, sizeof error);
    ::_exit(127);
  }
  ::execv(argv[0], argv.data());
  int error = errno;
  (void)!::write(status_fd, &error, sizeof error);
  ::_exit(127);
}

void append_capped(std::string& to, const char* data, size_t size) {
  if (to.size() < k_output_cap) to.append(data, std::min(size, k_output_cap - to.size()));
}

}  // namespace

std::string ProcessResult::describe() const {
  std::ostringstream text;
  switch (ending) {
    case Ending::Exited: text << "exited with status " << exit_code; break;
    case Ending::Signaled: text << "killed by signal " << term_signal; break;
    case Ending::TimedOut: text << "timed out (killed by the test)"; break;
    case Ending::FailedToStart: text << "failed to start: " << start_error; break;
  }
  text << " after " << elapsed.count() << " ms\n--- stdout ---\n"
       << out << "\n--- stderr ---\n"
       << err << "\n--------------";
  return text.str();
}

ProcessResult run_process(const std::string& program, const std::vector<std::string>& args,
                          std::chrono::milliseconds timeout) {
  ProcessResult result;
  auto start = Clock::now();
  auto deadline = start + timeout;

  // argv is built before fork: the child must not allocate.
  std::vector<std::string> storage;
  storage.reserve(args.size() + 1);
  storage.push_back(program);
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& arg : storage) argv.push_back(arg.data());
  argv.push_back(nullptr);

  Pipe out, err, status;
  if (!out.open() || !err.open() || !status.open()) {
    result.start_error = errno_text("pipe2", errno);
    return result;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    result.start_error = errno_text("fork", errno);
    return result;
  }
  if (pid == 0) exec_child(argv, out.write_end, err.write_end, status.write_end);

  out.close_write();
  err.close_write();
  status.close_write();

  // exec reports its failure through the close-on-exec status pipe; EOF means exec succeeded.
  int exec_error = 0;
  ssize_t got;
  do {
    got = ::read(status.read_end, &exec_error, sizeof exec_error);
  } while (got < 0 && errno == EINTR);
  if (got == sizeof exec_error) {
    int wstatus;
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
    result.start_error = errno_text(("exec " + program).c_str(), exec_error);
    result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
    return result;
  }

  bool timed_out = false;
  int wstatus = 0;
  bool reaped = false;
  char buffer[65536];
  while (true) {
    pollfd fds[2];
    nfds_t count = 0;
    std::string* sinks[2];
    if (out.read_end >= 0) {
      fds[count] = {out.read_end, POLLIN, 0};
      sinks[count++] = &result.out;
    }
    if (err.read_end >= 0) {
      fds[count] = {err.read_end, POLLIN, 0};
      sinks[count++] = &result.err;
    }
    auto now = Clock::now();
    if (now >= deadline) {
      timed_out = true;
      break;
    }
    if (count == 0) {
      // Both streams are closed: wait for the exit, still bounded by the deadline.
      pid_t done = ::waitpid(pid, &wstatus, WNOHANG);
      if (done == pid) {
        reaped = true;
        break;
      }
      ::usleep(10000);
      continue;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count();
    int ready = ::poll(fds, count, static_cast<int>(std::min<long long>(left + 1, 1000)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      ssize_t n = ::read(fds[i].fd, buffer, sizeof buffer);
      if (n > 0) {
        append_capped(*sinks[i], buffer, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        if (fds[i].fd == out.read_end) out.close_read();
        else err.close_read();
      }
    }
  }

  if (!reaped) {
    if (timed_out) ::kill(pid, SIGKILL);
    while (::waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
    }
  }
  // Whatever is still buffered in the pipes belongs to the result too.
  for (auto [fd, sink] : {std::pair{out.read_end, &result.out}, std::pair{err.read_end, &result.err}}) {
    if (fd < 0) continue;
    ::fcntl(fd, F_SETFL, O_NONBLOCK);
    ssize_t n;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) append_capped(*sink, buffer, static_cast<size_t>(n));
  }

  result.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  if (timed_out) {
    result.ending = ProcessResult::Ending::TimedOut;
  } else if (WIFEXITED(wstatus)) {
    result.ending = ProcessResult::Ending::Exited;
    result.exit_code = WEXITSTATUS(wstatus);
  } else if (WIFSIGNALED(wstatus)) {
    result.ending = ProcessResult::Ending::Signaled;
    result.term_signal = WTERMSIG(wstatus);
  }
  return result;
}

}  // namespace corral::testing
