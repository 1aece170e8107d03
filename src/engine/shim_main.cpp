// corral-shim: the supervisor of one VM process.
//
//   corral-shim RUN_DIR -- COMMAND [ARGS...]
//
// Starts its own session (so stopping corrald never takes VMs down), sends its stdout/stderr
// and the command's to RUN_DIR/monitor.log, writes RUN_DIR/shim.pid, forks and executes
// COMMAND, writes its pid to RUN_DIR/vm.pid, waits for it, then writes RUN_DIR/exit.json
// {"exit_code":N,"signal":S} atomically (temporary file + rename) and exits. corrald watches
// the shim through a pidfd: when the shim has ended, exit.json tells how the VM ended.
//
// SIGTERM, SIGINT and SIGHUP sent to the shim are passed on to the command. If the shim itself
// is killed, the command gets SIGKILL (PR_SET_PDEATHSIG): a VM nobody supervises is not left
// behind. Deliberately tiny: libc only, no allocation after fork.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace {

volatile sig_atomic_t g_child = 0;

void forward_signal(int signal) {
    pid_t child = g_child;
    if (child > 0)
        ::kill(child, signal);
}

/// Writes `text` to RUN_DIR/name through a random temporary name and rename(2).
bool write_atomic(const std::string& run_dir, const char* name, const std::string& text) {
    std::string path = run_dir + "/" + name;
    // A random, exclusively created temporary name: nothing planted there is ever followed.
    unsigned char random[16] = {};
    if (::getrandom(random, sizeof random, 0) != static_cast<ssize_t>(sizeof random)) {
        ::fprintf(stderr, "corral-shim: getrandom: %s\n", ::strerror(errno));
        return false;
    }
    std::string tmp = path + ".tmp-";
    for (unsigned char c : random) {
        tmp += "0123456789abcdef"[c >> 4];
        tmp += "0123456789abcdef"[c & 15];
    }
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        ::fprintf(stderr, "corral-shim: cannot create %s: %s\n", tmp.c_str(), ::strerror(errno));
        return false;
    }
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ::fprintf(stderr, "corral-shim: cannot write %s: %s\n", tmp.c_str(), ::strerror(errno));
            ::close(fd);
            return false;
        }
        done += static_cast<size_t>(n);
    }
    ::fsync(fd);
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        ::fprintf(stderr, "corral-shim: cannot rename %s: %s\n", tmp.c_str(), ::strerror(errno));
        return false;
    }
    return true;
}

int usage() {
    ::fprintf(stderr, "usage: corral-shim RUN_DIR -- COMMAND [ARGS...]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4 || ::strcmp(argv[2], "--") != 0)
        return usage();
    std::string run_dir = argv[1];
    char** command = argv + 3;

    // Already a session leader when launched by the engine's double fork: EPERM is fine.
    ::setsid();

    int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) {
        ::dup2(null_fd, 0);
        ::close(null_fd);
    }
    std::string log_path = run_dir + "/monitor.log";
    int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (log_fd < 0) {
        ::fprintf(stderr, "corral-shim: cannot open %s: %s\n", log_path.c_str(), ::strerror(errno));
        return 1;
    }
    ::dup2(log_fd, 1);
    ::dup2(log_fd, 2);
    ::close(log_fd);
    ::setvbuf(stderr, nullptr, _IOLBF, 0);

    ::unlink((run_dir + "/exit.json").c_str());
    ::unlink((run_dir + "/vm.pid").c_str());
    if (!write_atomic(run_dir, "shim.pid", std::to_string(::getpid()) + "\n"))
        return 1;

    // A daemon may have ignored or blocked signals; the VM process starts with defaults.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) {
        if (sig != SIGKILL && sig != SIGSTOP)
            ::signal(sig, SIG_DFL);
    }

    // Block the forwarded signals until the child's pid is known, so none is lost in between.
    sigset_t forwarded;
    sigemptyset(&forwarded);
    sigaddset(&forwarded, SIGTERM);
    sigaddset(&forwarded, SIGINT);
    sigaddset(&forwarded, SIGHUP);
    ::sigprocmask(SIG_BLOCK, &forwarded, nullptr);

    pid_t parent = ::getpid();
    pid_t child = ::fork();
    if (child < 0) {
        ::fprintf(stderr, "corral-shim: fork: %s\n", ::strerror(errno));
        return 1;
    }
    if (child == 0) {
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent)
            _exit(127);  // the shim died before prctl took effect
        ::execvp(command[0], command);
        ::fprintf(stderr, "corral-shim: cannot execute %s: %s\n", command[0], ::strerror(errno));
        _exit(127);
    }
    g_child = child;
    struct sigaction action {};
    action.sa_handler = forward_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    ::sigaction(SIGTERM, &action, nullptr);
    ::sigaction(SIGINT, &action, nullptr);
    ::sigaction(SIGHUP, &action, nullptr);
    ::sigprocmask(SIG_UNBLOCK, &forwarded, nullptr);

    write_atomic(run_dir, "vm.pid", std::to_string(child) + "\n");

    int status = 0;
    while (::waitpid(child, &status, 0) < 0) {
        if (errno != EINTR) {
            ::fprintf(stderr, "corral-shim: waitpid: %s\n", ::strerror(errno));
            return 1;
        }
    }
    int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    int signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    std::string json = "{\"exit_code\":" + std::to_string(exit_code) +
                       ",\"signal\":" + std::to_string(signal) + "}\n";
    if (!write_atomic(run_dir, "exit.json", json))
        return 1;
    return 0;
}
