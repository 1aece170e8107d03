#include "daemon/network/dnsmasq_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "base/log.h"
#include "base/private_file.h"
#include "engine/process.h"

extern char** environ;

namespace corral::daemon {

namespace fs = std::filesystem;

namespace {

std::string conf_argument(const DnsmasqPaths& paths) {
    return "--conf-file=" + paths.config().string();
}

/// True when process `pid` is a dnsmasq whose command line names `conf` (so a recycled pid, or
/// another network's dnsmasq, is never taken for ours).
bool runs_config(pid_t pid, const std::string& conf) {
    auto cmdline = engine::read_text_file(fmt::format("/proc/{}/cmdline", pid));
    if (!cmdline) return false;
    std::vector<std::string> args;
    size_t start = 0;
    for (size_t i = 0; i <= cmdline->size(); ++i) {
        if (i == cmdline->size() || (*cmdline)[i] == '\0') {
            if (i > start) args.emplace_back(cmdline->substr(start, i - start));
            start = i + 1;
        }
    }
    if (args.empty() || fs::path(args[0]).filename() != "dnsmasq") return false;
    for (const auto& arg : args)
        if (arg == conf) return true;
    return false;
}

pid_t parent_of(pid_t pid) {
    auto stat = engine::read_text_file(fmt::format("/proc/{}/stat", pid));
    if (!stat)
        return 0;
    // "pid (comm) state ppid ...": comm may hold anything, so parse after the last ')'.
    const size_t close = stat->rfind(')');
    char state = 0;
    int ppid = 0;
    if (close == std::string::npos || std::sscanf(stat->c_str() + close + 1, " %c %d", &state, &ppid) != 2)
        return 0;
    return ppid;
}

/// The dnsmasq whose command line names `conf`, by a walk of /proc; 0 when none. dnsmasq forks
/// a child per DNS-over-TCP connection, with the same command line: the one whose parent is not
/// such a process is the server.
pid_t find_by_command_line(const std::string& conf) {
    std::vector<pid_t> found;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator("/proc", error)) {
        const std::string name = entry.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        const pid_t pid = static_cast<pid_t>(std::stol(name));
        if (runs_config(pid, conf))
            found.push_back(pid);
    }
    for (pid_t pid : found)
        if (std::find(found.begin(), found.end(), parent_of(pid)) == found.end())
            return pid;
    return 0;
}

}  // namespace

DnsmasqProcess::DnsmasqProcess(std::string network, DnsmasqPaths paths, EventLoop& loop)
    : m_network(std::move(network)), m_paths(std::move(paths)), m_loop(loop) {}

DnsmasqProcess::~DnsmasqProcess() {
    // corrald stopping leaves dnsmasq running (the next corrald adopts it); only stop the watch.
    std::unique_lock lock(m_mutex);
    if (m_watching && m_pidfd.valid()) {
        const int fd = m_pidfd.get();
        m_watching = false;
        lock.unlock();
        m_loop.remove(fd);
    }
}

pid_t DnsmasqProcess::from_pid_file() const {
    auto pid = engine::read_pid_file(m_paths.pid_file());
    if (!pid || *pid <= 0) return 0;
    return runs_config(*pid, conf_argument(m_paths)) ? *pid : 0;
}

pid_t DnsmasqProcess::find_adoptable() const {
    if (pid_t pid = from_pid_file())
        return pid;
    // A dnsmasq writes its pid file only once it serves: one (re)started just before a corrald
    // stopped has none yet, and found by the file alone it would be neither adopted nor stopped
    // when its network goes (it outlived the README tour that way).
    return find_by_command_line(conf_argument(m_paths));
}

namespace {

/// Writes `text` to `path` (mode `mode`) unless it holds that already; true when it wrote.
Result<bool> write_if_changed(const fs::path& path, const std::string& text, mode_t mode) {
    auto current = engine::read_text_file(path);
    if (current && *current == text) return false;
    TRY_VOID(write_file_atomically(path.string(), text, mode));
    return true;
}

Result<void> make_folder(const fs::path& dir, std::optional<fs::perms> perms = std::nullopt) {
    std::error_code error;
    fs::create_directories(dir, error);
    if (!error && perms) fs::permissions(dir, *perms, error);
    if (error) return fail(fmt::format("creating {}: {}", dir.string(), error.message()), error.value());
    return {};
}

}  // namespace

void DnsmasqProcess::adopt() {
    if (m_pid != 0) return;
    pid_t running = find_adoptable();
    if (running == 0) return;
    auto pidfd = engine::open_pidfd(running);
    if (!pidfd) return;
    m_pid = running;
    m_pidfd = std::move(*pidfd);
    log_info("network {}: adopted dnsmasq (pid {})", m_network, running);
    watch();
}

Result<void> DnsmasqProcess::run(const DnsmasqFiles& files) {
    std::unique_lock lock(m_mutex);
    m_stopping = false;
    TRY_VOID(make_folder(m_paths.dir));
    // The files dnsmasq reads again on SIGHUP are read by its unprivileged user: readable by all
    // (dnsmasq_config.h).
    const auto readable = fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                          fs::perms::others_read | fs::perms::others_exec;
    TRY_VOID(make_folder(m_paths.reread_dir.parent_path(), readable));
    TRY_VOID(make_folder(m_paths.reread_dir, readable));
    bool reread_changed = false;
    for (auto [path, text] : {std::pair{m_paths.dhcp_hosts(), &files.dhcp_hosts}, {m_paths.dns_hosts(), &files.dns_hosts},
                              {m_paths.dhcp_opts(), &files.dhcp_opts}, {m_paths.servers(), &files.servers}})
        reread_changed |= TRY(write_if_changed(path, *text, 0644));
    const bool config_changed = TRY(write_if_changed(m_paths.config(), files.config, 0600));
    adopt();
    if (m_pid != 0 && !config_changed) {
        if (reread_changed) reload();
        return {};
    }
    // dnsmasq reads its configuration only at start; leases survive in the leases file.
    if (m_pid != 0) terminate();
    m_recent_exits.clear();
    m_problem.clear();
    return spawn();
}

void DnsmasqProcess::reload() {
    // dnsmasq logs "read <file>" for each file it reads again; the dhcp-optsfile comes after the
    // hosts, and the forwarders are taken in the same turn of its loop, before it serves anything.
    // Waiting for that line means a DHCP or DNS request sent after run() returns meets the new
    // files. A dnsmasq that does not say it (it died meanwhile) is the watch's to restart.
    std::error_code error;
    const auto logged = fs::file_size(m_paths.log(), error);
    const uintmax_t from = error ? 0 : logged;
    if (::syscall(SYS_pidfd_send_signal, m_pidfd.get(), SIGHUP, nullptr, 0) != 0) {
        log_warning("network {}: cannot signal dnsmasq (pid {}) to read its files again: {}", m_network, m_pid,
                    std::strerror(errno));
        return;
    }
    ++m_reloads;
    const std::string done = "read " + m_paths.dhcp_opts().string();
    for (int i = 0; i < 250; ++i) {  // at most 5 s; it takes milliseconds
        std::ifstream log(m_paths.log());
        log.seekg(static_cast<std::streamoff>(from));
        for (std::string line; std::getline(log, line);)
            if (line.find(done) != std::string::npos) {
                log_info("network {}: dnsmasq (pid {}) read its hosts, options and forwarders again", m_network, m_pid);
                return;
            }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    log_warning("network {}: dnsmasq (pid {}) did not say it read {} again", m_network, m_pid,
                m_paths.dhcp_opts().string());
}

Result<void> DnsmasqProcess::spawn() {
    const std::string program = engine::find_on_path("dnsmasq").string();
    if (program.empty()) {
        m_problem = "dnsmasq is not installed (Debian package dnsmasq-base)";
        return fail(fmt::format("network {}: {}", m_network, m_problem));
    }
    std::vector<std::string> args{program, conf_argument(m_paths), "--keep-in-foreground",
                                  "--log-facility=" + m_paths.log().string()};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawnattr_t attributes;
    posix_spawnattr_init(&attributes);
    // corrald blocks SIGTERM/SIGHUP in every thread (sigwait) and ignores SIGPIPE: dnsmasq must
    // get them back. Its own session: a Ctrl-C meant for corrald does not reach it.
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attributes, &none);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&attributes, &defaults);
    posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
    const std::string log = m_paths.log().string();
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0640);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = 0;
    const int spawned = ::posix_spawn(&pid, program.c_str(), &actions, &attributes, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    if (spawned != 0) {
        m_problem = fmt::format("cannot start dnsmasq: {}", std::strerror(spawned));
        return fail(fmt::format("network {}: {}", m_network, m_problem), spawned);
    }
    m_pid = pid;
    m_pidfd = TRY(engine::open_pidfd(pid));
    // dnsmasq checks its configuration and binds before it serves: an error there (a bad
    // option, the address in use) ends it at once. Wait a moment to report that to the caller.
    for (int i = 0; i < 20; ++i) {
        if (engine::pidfd_ended(m_pidfd.get())) {
            engine::reap_if_child(m_pidfd.get());
            m_pid = 0;
            m_pidfd = UniqueFd();
            m_problem = fmt::format("dnsmasq exited at start: {}", engine::tail_lines(m_paths.log(), 3));
            return fail(fmt::format("network {}: {}", m_network, m_problem));
        }
        if (from_pid_file() == pid)
            break;  // it wrote its pid file: it is serving
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    log_info("network {}: dnsmasq started (pid {})", m_network, pid);
    watch();
    return {};
}

void DnsmasqProcess::watch() {
    const int fd = m_pidfd.get();
    m_watching = true;
    auto added = m_loop.add(fd, [this, fd] {
        m_loop.remove(fd);  // on the loop thread: returns at once; the pidfd stays readable
        on_exit();
    });
    if (!added) {
        m_watching = false;
        log_warning("network {}: cannot watch dnsmasq: {}", m_network, added.error().describe());
    }
}

void DnsmasqProcess::on_exit() {
    std::lock_guard lock(m_mutex);
    // terminate() or the destructor took the watch away meanwhile: the end is theirs to handle.
    if (!m_watching) return;
    m_watching = false;
    if (m_pidfd.valid()) engine::reap_if_child(m_pidfd.get());
    m_pidfd = UniqueFd();
    const pid_t old = m_pid;
    m_pid = 0;
    if (m_stopping) return;
    const auto now = std::chrono::steady_clock::now();
    m_recent_exits.push_back(now);
    while (!m_recent_exits.empty() && now - m_recent_exits.front() > k_restart_window) m_recent_exits.pop_front();
    const std::string last = engine::tail_lines(m_paths.log(), 2);
    if (static_cast<int>(m_recent_exits.size()) > k_max_restarts) {
        m_problem = fmt::format("dnsmasq died {} times within {} s; left stopped (last words: {})",
                                m_recent_exits.size(), k_restart_window.count(), last);
        log_error("network {}: {}", m_network, m_problem);
        return;
    }
    log_warning("network {}: dnsmasq (pid {}) ended; starting it again", m_network, old);
    ++m_restarts;
    if (auto started = spawn(); !started) log_error("{}", started.error().describe());
}

void DnsmasqProcess::terminate() {
    if (m_pid == 0) return;
    if (m_watching) {
        const int fd = m_pidfd.get();
        m_watching = false;
        // remove() from another thread waits for the loop; on_exit takes m_mutex, which we hold,
        // but remove() never waits for a running callback to take it: it runs between callbacks.
        m_mutex.unlock();
        m_loop.remove(fd);
        m_mutex.lock();
    }
    if (!m_pidfd.valid()) {
        m_pid = 0;
        return;
    }
    ::kill(m_pid, SIGTERM);
    for (int i = 0; i < 100 && !engine::pidfd_ended(m_pidfd.get()); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (!engine::pidfd_ended(m_pidfd.get())) {
        ::kill(m_pid, SIGKILL);
        for (int i = 0; i < 100 && !engine::pidfd_ended(m_pidfd.get()); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    engine::reap_if_child(m_pidfd.get());
    m_pid = 0;
    m_pidfd = UniqueFd();
}

void DnsmasqProcess::stop() {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
    adopt();
    terminate();
    std::error_code error;
    fs::remove(m_paths.pid_file(), error);
}

pid_t DnsmasqProcess::pid() const {
    std::lock_guard lock(m_mutex);
    return m_pid;
}

int DnsmasqProcess::reloads() const {
    std::lock_guard lock(m_mutex);
    return m_reloads;
}

int DnsmasqProcess::restarts() const {
    std::lock_guard lock(m_mutex);
    return m_restarts;
}

std::string DnsmasqProcess::problem() const {
    std::lock_guard lock(m_mutex);
    return m_problem;
}

}  // namespace corral::daemon
