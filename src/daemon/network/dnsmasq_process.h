#pragma once

#include <sys/types.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <mutex>
#include <string>

#include "base/event_loop.h"
#include "base/result.h"
#include "base/unique_fd.h"
#include "daemon/network/dnsmasq_config.h"

namespace corral::daemon {

/// One network's dnsmasq, supervised: started with the network's generated files,
/// watched through a pidfd on the given EventLoop and started again when it dies (the leases
/// file keeps the leases), adopted after a corrald restart when the pid file names a live
/// dnsmasq that runs this very configuration, and stopped with the network. A dnsmasq that dies
/// k_max_restarts times within k_restart_window is left stopped, and status() says why.
class DnsmasqProcess {
public:
    static constexpr int k_max_restarts = 5;
    static constexpr std::chrono::seconds k_restart_window{30};

    DnsmasqProcess(std::string network, DnsmasqPaths paths, EventLoop& loop);
    ~DnsmasqProcess();
    DnsmasqProcess(const DnsmasqProcess&) = delete;
    DnsmasqProcess& operator=(const DnsmasqProcess&) = delete;

    /// Writes `files`; adopts a running dnsmasq of this network when its configuration is the
    /// same. A changed configuration (re)starts dnsmasq; changes of only the files it reads again
    /// (hosts, DHCP options, forwarders) reload it (SIGHUP: same process, leases, sockets; its DNS
    /// cache is emptied), and run() returns once dnsmasq has read them. Safe to call again: unchanged files change nothing.
    Result<void> run(const DnsmasqFiles& files);
    /// Stops dnsmasq (SIGTERM, then SIGKILL), its own or one a previous corrald left running on
    /// this network's configuration, and stops watching it. The files stay.
    void stop();

    /// The running dnsmasq's pid, 0 when none.
    pid_t pid() const;
    /// How many times it was started again after dying.
    int restarts() const;
    /// How many times it was told to read its hosts, options and forwarders again.
    int reloads() const;
    /// "" while all is well, else why dnsmasq is not running.
    std::string problem() const;

private:
    Result<void> spawn();  // needs m_mutex
    void reload();         // needs m_mutex
    void adopt();          // needs m_mutex
    void watch();          // needs m_mutex
    void on_exit();
    void terminate();      // needs m_mutex
    /// A live dnsmasq started with our configuration: the pid file's, else one found by its
    /// command line (it has not written the file yet); 0 when none.
    pid_t find_adoptable() const;
    /// The pid file's dnsmasq when it runs our configuration (it wrote the file: it serves); 0 otherwise.
    pid_t from_pid_file() const;

    std::string m_network;
    DnsmasqPaths m_paths;
    EventLoop& m_loop;
    mutable std::mutex m_mutex;
    pid_t m_pid = 0;
    UniqueFd m_pidfd;
    bool m_watching = false;
    bool m_stopping = false;
    int m_restarts = 0;
    int m_reloads = 0;
    std::deque<std::chrono::steady_clock::time_point> m_recent_exits;
    std::string m_problem;
};

}  // namespace corral::daemon
