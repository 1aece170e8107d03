// corral-shim: the supervisor of one VM process.
//
//   corral-shim RUN_DIR [--fds N] [--user UID:GID] -- COMMAND [ARGS...]
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
//
// The command runs with less than the shim (which stays root, to supervise and write
// exit.json): in RUN_DIR as working folder; with fds 3 .. 3+N-1 that corrald handed over
// (--fds N; the shim closes its own copies); with an empty capability bounding and inheritable
// set, so that even as uid 0 it starts with no capability; with no supplementary groups and as
// UID:GID when --user is given; and with no_new_privs, so that no setuid or file-capability
// binary gives any of it back. Each step the shim cannot take (not root: no bounding set to
// drop) is skipped when it would not grant anything; a failing uid switch stops the start.
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
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
    ::fprintf(stderr, "usage: corral-shim RUN_DIR [--fds N] [--user UID:GID] -- COMMAND [ARGS...]\n");
    return 2;
}

/// What the VM process runs as (parsed before fork).
struct Confinement {
    int handed_fds = 0;
    bool switch_user = false;
    uid_t uid = 0;
    gid_t gid = 0;
};

/// In the child, before exec: gives up everything the VM process does not need. Only
/// async-signal-safe calls. False (with a message on stderr = monitor.log) when it must not run.
bool confine(const Confinement& c, const char* run_dir) {
    if (::chdir(run_dir) != 0) {
        ::fprintf(stderr, "corral-shim: cannot enter %s: %s\n", run_dir, ::strerror(errno));
        return false;
    }
    // Bounding set: without it, exec as uid 0 (the native engine today) would grant every
    // capability again. EPERM (no CAP_SETPCAP: not root) means there is nothing to grant.
    for (int cap = 0; cap <= 63; ++cap) {
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL)
            break;  // past the kernel's last capability
    }
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (c.switch_user) {
        if (::setgroups(0, nullptr) != 0 || ::setresgid(c.gid, c.gid, c.gid) != 0 ||
            ::setresuid(c.uid, c.uid, c.uid) != 0) {
            ::fprintf(stderr, "corral-shim: cannot switch to uid %u gid %u: %s\n", c.uid, c.gid,
                      ::strerror(errno));
            return false;
        }
    }
    // Empty inheritable set (exec keeps P(inheritable) & file inheritable for root) and, with the
    // bounding set empty, nothing left for exec to grant; permitted/effective go too.
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capset, &header, data) != 0) {
        ::fprintf(stderr, "corral-shim: cannot drop capabilities: %s\n", ::strerror(errno));
        return false;
    }
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        ::fprintf(stderr, "corral-shim: cannot set no_new_privs: %s\n", ::strerror(errno));
        return false;
    }
    return true;
}

/// Parses the options between RUN_DIR and "--"; the index of "--" or -1.
int parse_options(int argc, char** argv, Confinement& c) {
    int i = 2;
    for (; i < argc && ::strcmp(argv[i], "--") != 0; ++i) {
        if (::strcmp(argv[i], "--fds") == 0 && i + 1 < argc) {
            char* end = nullptr;
            long n = ::strtol(argv[++i], &end, 10);
            if (*end != '\0' || n < 0 || n > 1000)
                return -1;
            c.handed_fds = static_cast<int>(n);
        } else if (::strcmp(argv[i], "--user") == 0 && i + 1 < argc) {
            unsigned long uid = 0, gid = 0;
            char tail = 0;
            if (::sscanf(argv[++i], "%lu:%lu%c", &uid, &gid, &tail) != 2 || uid == 0 || gid == 0)
                return -1;  // never "switch" to root
            c.switch_user = true;
            c.uid = static_cast<uid_t>(uid);
            c.gid = static_cast<gid_t>(gid);
        } else {
            return -1;
        }
    }
    return i < argc ? i : -1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 4)
        return usage();
    Confinement confinement;
    int separator = parse_options(argc, argv, confinement);
    if (separator < 0 || separator + 1 >= argc)
        return usage();
    std::string run_dir = argv[1];
    char** command = argv + separator + 1;

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
        if (!confine(confinement, run_dir.c_str()))
            _exit(127);
        ::execvp(command[0], command);
        ::fprintf(stderr, "corral-shim: cannot execute %s: %s\n", command[0], ::strerror(errno));
        _exit(127);
    }
    g_child = child;
    // The handed descriptors are the VM's: the shim keeps no copy (a tap stays attached, a
    // socket stays listening, only as long as the VM process holds them).
    if (confinement.handed_fds > 0)
        ::close_range(3, static_cast<unsigned>(3 + confinement.handed_fds - 1), 0);
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
