#pragma once

// A small network of our own for the firewall's integration tests: the test process moves into a
// fresh network namespace (the "host": bridges, corrald's nft tables), and each "VM" is another
// namespace (`ip netns`, named with our pid) whose eth0 is a veth plugged into a host bridge; the
// host side of the veth stands for the VM's tap. An "uplink" namespace stands for the outside world.
// Everything is removed by the destructor (and at exit, should a test abort).

#include <optional>
#include <string>
#include <vector>

namespace corral::net::testing {

/// Exit status and output (stdout + stderr) of a shell command.
struct Shell {
    int status = -1;
    std::string output;
    bool ok() const { return status == 0; }
};

/// Runs `command` with /bin/sh.
Shell sh(const std::string& command);

class NetLab {
public:
    /// Why the lab cannot be built here (not root, no nft/ip/busybox/python3), or nullopt.
    static std::optional<std::string> skip_reason();

    NetLab();  ///< enters a private network namespace (once per process) and turns ip_forward on
    ~NetLab();
    NetLab(const NetLab&) = delete;
    NetLab& operator=(const NetLab&) = delete;

    /// A bridge in the host namespace with `cidr` (its gateway address), br_netfilter on for it.
    void add_bridge(const std::string& name, const std::string& cidr);
    /// A VM namespace `vm` with eth0 = `mac`, `cidr`, default route via `gateway`; the host
    /// side of its veth is called `tap` and is plugged into `bridge`.
    void add_vm(const std::string& vm, const std::string& tap, const std::string& bridge, const std::string& mac,
                const std::string& cidr, const std::string& gateway);
    /// The outside world: host interface `host_if` with `host_cidr`, namespace "uplink" with
    /// `uplink_cidr` and no route back to the VMs' subnets (so only NAT gets replies home).
    void add_uplink(const std::string& host_if, const std::string& host_cidr, const std::string& uplink_cidr);

    /// Runs `command` inside namespace `vm`.
    Shell in(const std::string& vm, const std::string& command) const;
    /// One ping from `vm` to `address` (1 s timeout).
    bool pings(const std::string& vm, const std::string& address) const;
    /// Opens a TCP connection from `from` to `address:port` where `to` listens, sends a line, and
    /// returns what the listener received ("" when nothing got through).
    std::string tcp_exchange(const std::string& from, const std::string& to, const std::string& address, int port) const;
    /// Sends one UDP datagram from `from` (source port `sport`) to `address:dport`, where `to`
    /// listens; returns what arrived ("" when nothing did).
    std::string udp_exchange(const std::string& from, int sport, const std::string& to, const std::string& address,
                             int dport) const;
    /// A scratch directory of this lab.
    const std::string& dir() const { return m_dir; }

private:
    std::string ns(const std::string& vm) const { return m_prefix + vm; }
    std::string m_prefix;
    std::string m_dir;
    std::vector<std::string> m_namespaces;
    std::vector<std::string> m_links;
};

}  // namespace corral::net::testing
