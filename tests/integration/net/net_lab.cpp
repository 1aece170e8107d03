#include "net_lab.h"

#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

namespace corral::net::testing {
namespace {

// Namespaces to delete at exit, should a test abort before its NetLab's destructor runs.
std::set<std::string>& leftover_namespaces() {
    static std::set<std::string> names;
    return names;
}

void delete_leftovers() {
    for (const std::string& name : leftover_namespaces()) sh("ip netns del " + name + " 2>/dev/null");
}

void must(const Shell& result, const std::string& what) {
    if (!result.ok()) throw std::runtime_error(what + " failed: " + result.output);
}

}  // namespace

Shell sh(const std::string& command) {
    Shell result;
    FILE* pipe = ::popen(("(" + command + ") 2>&1").c_str(), "r");
    if (!pipe) return result;
    char buffer[4096];
    size_t n;
    while ((n = ::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
    int status = ::pclose(pipe);
    result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

std::optional<std::string> NetLab::skip_reason() {
    if (::geteuid() != 0) return "needs root for network namespaces and nft";
    if (!std::filesystem::exists("/proc/sys/net/bridge"))
        return "needs br_netfilter for groups between VMs on one bridge (modprobe br_netfilter)";
    for (const char* tool : {"nft", "ip", "busybox", "python3"})
        if (!sh(std::string("command -v ") + tool).ok())
            return std::string("needs ") + tool + " (tools/setup installs it)";
    return std::nullopt;
}

NetLab::NetLab() {
    static bool entered = [] {
        // The whole process (its main thread, which runs the tests and spawns nft) moves into a
        // namespace of its own: the host's real ruleset and interfaces are never touched.
        if (::unshare(CLONE_NEWNET) != 0) throw std::runtime_error(std::string("unshare: ") + std::strerror(errno));
        std::atexit(delete_leftovers);
        return true;
    }();
    (void)entered;
    m_prefix = "cfw" + std::to_string(::getpid()) + "-";
    char scratch[] = "/tmp/corral-fw-XXXXXX";
    m_dir = ::mkdtemp(scratch);
    must(sh("ip link set lo up && sysctl -qw net.ipv4.ip_forward=1"), "host setup");
}

NetLab::~NetLab() {
    for (const std::string& name : m_namespaces) {
        sh("ip netns del " + name);
        leftover_namespaces().erase(name);
    }
    for (auto it = m_links.rbegin(); it != m_links.rend(); ++it) sh("ip link del " + *it + " 2>/dev/null");
    sh("nft delete table bridge corral 2>/dev/null; nft delete table inet corral 2>/dev/null; "
       "nft delete table ip corral_nat 2>/dev/null; nft delete table ip6 corral_nat6 2>/dev/null");
    std::filesystem::remove_all(m_dir);
}

void NetLab::add_bridge(const std::string& name, const std::string& cidr) {
    // nf_call_iptables on this bridge only: bridged IPv4/IPv6 traverses the inet hooks (see firewall.h).
    must(sh("ip link add " + name + " type bridge nf_call_iptables 1 nf_call_ip6tables 1 && ip addr add " + cidr +
            " dev " + name + " && ip link set " + name + " up"),
         "bridge " + name);
    m_links.push_back(name);
}

void NetLab::add_vm(const std::string& vm, const std::string& tap, const std::string& bridge, const std::string& mac,
                    const std::string& cidr, const std::string& gateway) {
    must(sh("ip netns add " + ns(vm)), "netns " + vm);
    m_namespaces.push_back(ns(vm));
    leftover_namespaces().insert(ns(vm));
    must(sh("ip link add " + tap + " type veth peer name eth0 netns " + ns(vm) + " && ip link set " + tap + " master " +
            bridge + " up"),
         "veth " + tap);
    m_links.push_back(tap);
    must(in(vm, "ip link set lo up && ip link set eth0 address " + mac + " && ip addr add " + cidr +
                    " dev eth0 && ip link set eth0 up && ip route add default via " + gateway),
         "addresses of " + vm);
}

void NetLab::add_uplink(const std::string& host_if, const std::string& host_cidr, const std::string& uplink_cidr) {
    must(sh("ip netns add " + ns("uplink")), "netns uplink");
    m_namespaces.push_back(ns("uplink"));
    leftover_namespaces().insert(ns("uplink"));
    must(sh("ip link add " + host_if + " type veth peer name eth0 netns " + ns("uplink") + " && ip addr add " +
            host_cidr + " dev " + host_if + " && ip link set " + host_if + " up"),
         "uplink veth");
    m_links.push_back(host_if);
    must(in("uplink", "ip link set lo up && ip addr add " + uplink_cidr + " dev eth0 && ip link set eth0 up"),
         "uplink addresses");
}

Shell NetLab::in(const std::string& vm, const std::string& command) const {
    return sh("ip netns exec " + ns(vm) + " sh -c '" + command + "'");
}

int NetLab::start(const std::string& vm, const std::string& command) const {
    // `ip netns exec` execs sh, so $! is the pid of the sh running `command`.
    Shell started = sh("ip netns exec " + ns(vm) + " sh -c '" + command + "' >/dev/null 2>&1 </dev/null & echo $!");
    return std::atoi(started.output.c_str());
}

bool NetLab::pings(const std::string& vm, const std::string& address) const {
    return in(vm, "busybox ping -c 1 -W 1 " + address).ok();
}

std::string NetLab::tcp_exchange(const std::string& from, const std::string& to, const std::string& address,
                                 int port) const {
    std::string received = m_dir + "/tcp-" + std::to_string(port);
    std::filesystem::remove(received);
    // The listener lives at most 4 s; the client gives up connecting after 2 s.
    // `ip netns exec` execs timeout, so $! is the listener's own pid: stopped by pid below.
    Shell listener = sh("ip netns exec " + ns(to) + " timeout 4 busybox nc -l -p " + std::to_string(port) + " > " +
                        received + " 2>/dev/null & echo $!");
    ::usleep(300 * 1000);
    in(from, "echo hello-" + std::to_string(port) + " | timeout 3 busybox nc -w 2 " + address + " " +
                 std::to_string(port));
    ::usleep(100 * 1000);
    if (int pid = std::atoi(listener.output.c_str()); pid > 0) ::kill(pid, SIGTERM);
    std::ifstream file(received);
    std::string line;
    std::getline(file, line);
    return line;
}

std::string NetLab::udp_exchange(const std::string& from, int sport, const std::string& to, const std::string& address,
                                 int dport) const {
    std::string received = m_dir + "/udp-" + std::to_string(dport);
    std::filesystem::remove(received);
    std::string ready = received + ".ready";
    std::filesystem::remove(ready);
    // The listener says when it is bound, so the datagram is never sent before anyone listens.
    std::string family = address.find(':') == std::string::npos ? "socket.AF_INET" : "socket.AF_INET6";
    std::string listener = "import socket; s = socket.socket(" + family + ", socket.SOCK_DGRAM); s.bind((\"\", " +
                           std::to_string(dport) + ")); s.settimeout(2); open(\"" + ready +
                           "\", \"w\").close()\ntry: print(s.recv(100).decode(), flush=True)\nexcept OSError: pass";
    std::string sender = "import socket; s = socket.socket(" + family + ", socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, "
                         "socket.SO_BROADCAST, 1); s.bind((\"\", " +
                         std::to_string(sport) + ")); s.sendto(b\"offer-from-" + std::to_string(sport) + "\", (\"" +
                         address + "\", " + std::to_string(dport) + "))";
    std::ofstream(m_dir + "/listen.py") << listener;
    std::ofstream(m_dir + "/send.py") << sender;
    Shell started = sh("ip netns exec " + ns(to) + " python3 " + m_dir + "/listen.py > " + received +
                         " 2>/dev/null </dev/null & echo $!");  // no pipe of ours left open: sh() returns now
    for (int i = 0; i < 50 && !std::filesystem::exists(ready); ++i) ::usleep(100 * 1000);
    in(from, "python3 " + m_dir + "/send.py");
    // The listener ends after its datagram or its 2 s timeout.
    if (int pid = std::atoi(started.output.c_str()); pid > 0) ::waitpid(pid, nullptr, 0);
    for (int i = 0; i < 30 && sh("kill -0 " + started.output).ok(); ++i) ::usleep(100 * 1000);
    std::ifstream file(received);
    std::string line;
    std::getline(file, line);
    return line;
}

}  // namespace corral::net::testing
