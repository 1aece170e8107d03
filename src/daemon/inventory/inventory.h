#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"

/// corrald's inventory: the durable records behind the REST API (docs/api.md). Plain values in,
/// plain values out; the live objects (processes, sockets, volumes on disk) live elsewhere.
///
/// Error contract, the same for every implementation:
///   ENOENT  no such object ("no VM named web1", "no task t-17");
///   EEXIST  the name is taken ("a VM named web1 already exists");
///   EBUSY   the object is still referenced ("pool default is used by image default");
///   EINVAL  a field out of range (task status or progress);
///   0       anything else (I/O, corruption, lock timeouts): an internal error.
/// The HTTP layer maps ENOENT -> 404, EEXIST/EBUSY -> 409, EINVAL -> 400, others -> 500.
/// Text fields use "" for "none" (the API shows null); timestamps are ISO-8601 UTC strings
/// ("2026-11-26T23:00:00Z") set by the inventory, never by the caller.
namespace corral::inventory {

/// A volume attached to a VM.
struct DiskRef {
    std::string pool;
    std::string volume;
    bool readonly = false;
    bool operator==(const DiskRef&) const = default;
};

/// A network interface: on a managed network, on a host bridge (the daemon makes the tap for
/// both) or on an existing tap.
struct NicRef {
    std::string bridge;
    std::string tap;
    std::string mac;
    /// The managed network (NetworkRecord::name) the NIC is on; "" for bridge/tap NICs.
    std::string network;
    /// The IPv4 address corrald reserved for the NIC on `network` when the VM was defined (an
    /// OpenStack port's fixed IP): DHCP hands out exactly this one. "" = none (bridge/tap NICs,
    /// bridged/vlan networks without a subnet).
    std::string ipv4;
    /// The security groups (SecurityGroupRecord::name) filtering the NIC, in the order given;
    /// empty = everything passes. Only NICs on managed networks carry groups. Stored apart from
    /// the rest of the record: update_vm() leaves them alone, set_nic_groups() changes them.
    std::vector<std::string> groups;
    bool operator==(const NicRef&) const = default;
};

/// A VM's share of the host (docs/api.md "Limits"), applied through its cgroup. 0 and "" mean
/// "not set": the kernel's default weight, no cap, no pinning.
struct VmLimits {
    int cpu_weight = 0;                    ///< 1-10000, relative (cgroup v2 cpu.weight; 100 is the default)
    int cpu_max_percent = 0;               ///< cap in percent of one host CPU (50 = half a CPU)
    std::int64_t memory_overhead_mib = 0;  ///< memory cap = memory_mib + this (the monitor's own needs)
    int io_weight = 0;                     ///< 1-10000, relative disk share (io.weight / blkio.weight)
    std::string host_cpus;                 ///< host CPUs the VM may run on, "0-3,6" (cpuset); "" = all
    std::string vcpu_pins;                 ///< the host CPU of each vCPU in order, "2,3"; "" = none
    /// Rate limits of each disk and each NIC direction (the monitor's, not the cgroup's: they
    /// need no cgroups); 0 = unlimited.
    std::uint64_t disk_bytes_per_s = 0;
    std::uint64_t disk_iops = 0;
    std::uint64_t nic_bytes_per_s = 0;
    bool operator==(const VmLimits&) const = default;
    /// Whether any of the limits enforced through the VM's cgroup is set.
    bool needs_cgroup() const {
        return cpu_weight != 0 || cpu_max_percent != 0 || memory_overhead_mib != 0 || io_weight != 0 ||
               !host_cpus.empty() || !vcpu_pins.empty();
    }
};

struct VmRecord {
    std::string name;
    std::string engine;  // "native" | "emulated"
    int vcpus = 1;
    std::int64_t memory_mib = 512;
    std::string image;  // "" = none
    std::vector<DiskRef> disks;
    std::vector<NicRef> nics;
    std::string restart_policy = "no";  // "no" | "on-failure" | "always"
    std::string cmdline;
    std::string state = "stopped";
    std::string state_reason;
    std::int64_t pid = 0;  // 0 = no process
    std::string run_dir;
    /// When the VM's process started. Set by the inventory: to now when `pid` becomes another
    /// process, to "" when it becomes 0 (a reset or an adoption keeps it).
    std::string started_at;
    /// Automatic restarts (restart policy) since the VM was last started by hand.
    std::int64_t restarts = 0;
    /// Why the VM last crashed, "" when it never did (kept across starts).
    std::string last_crash;
    VmLimits limits;
    /// The graphical display's size in pixels; 0x0 = no display (the default).
    int display_width = 0;
    int display_height = 0;
    /// The memory the guest is asked to keep through its balloon (docs/api.md "Memory balloon"),
    /// applied at every start; 0 = none kept (the balloon deflated), else 1 to memory_mib - 1.
    std::int64_t balloon_target_mib = 0;
    /// The VM generation ID (a GUID) the guest saw in its current or last run on the emulated
    /// engine, "" = none. A start draws a new one; a live migration keeps it (it is no fork).
    std::string generation_id;
    std::string created_at;
    std::string updated_at;
    bool operator==(const VmRecord&) const = default;
};

struct PoolRecord {
    std::string name;
    std::string driver;  // "dir"
    std::string path;
    std::string created_at;
    bool operator==(const PoolRecord&) const = default;
};

/// An image belongs to a pool: creating one in a missing pool is ENOENT, and a pool cannot be
/// deleted while an image is in it (EBUSY).
struct ImageRecord {
    std::string name;
    std::string pool;
    std::string kernel;
    std::string initrd;
    std::string root_volume;
    std::string cmdline;
    std::string description;
    std::string created_at;
    bool operator==(const ImageRecord&) const = default;
};

inline constexpr const char* k_task_queued = "queued";  ///< waiting for a free worker
inline constexpr const char* k_task_running = "running";
inline constexpr const char* k_task_succeeded = "succeeded";
inline constexpr const char* k_task_failed = "failed";
inline constexpr const char* k_task_cancelled = "cancelled";  ///< stopped on request; what it made is gone

struct TaskRecord {
    std::string id;  // "t-N"; N increases and is never reused, even after pruning
    std::string kind;
    std::string target;
    std::string status = k_task_running;  // k_task_queued | k_task_running | k_task_succeeded | k_task_failed | k_task_cancelled
    double progress = 0.0;                // 0..1
    std::string message;
    std::string error;  // "" = none
    std::string created_at;
    std::string finished_at;  // "" while running
    bool operator==(const TaskRecord&) const = default;
};

/// A static DHCP reservation on a network: `mac` always gets `ipv4` (and `hostname` in DNS).
struct ReservationRecord {
    std::string mac;  // lowercase "52:54:00:12:34:56"
    std::string ipv4;
    std::string hostname;  // "" = none
    bool operator==(const ReservationRecord&) const = default;
};

/// A network corrald manages (docs/api.md "Networks"). Addresses are text, validated by the
/// daemon before they get here ("10.0.100.0/24", "10.0.100.1").
struct NetworkRecord {
    std::string name;
    std::string kind = "nat";  // "nat" | "isolated" | "bridged" | "vlan"
    std::string bridge;        // the Linux bridge (corrald's for nat/isolated/vlan, the host's for bridged)
    std::string parent;        // vlan: the interface that carries the tagged frames; "" otherwise
    int vlan_id = 0;           // vlan: 1..4094; 0 otherwise
    std::string subnet4;       // "" = no IPv4 (bridged networks)
    std::string gateway4;
    std::string dhcp_start;  // the dynamic range; "" with subnet4 "" only
    std::string dhcp_end;
    std::string subnet6;  // "" = no IPv6
    int mtu = 1500;
    std::vector<std::string> dns_forwarders;  // upstream servers; empty = the host's resolv.conf
    std::vector<ReservationRecord> reservations;
    std::string created_at;
    bool operator==(const NetworkRecord&) const = default;
};

/// One rule of a security group (docs/firewall.md): what a NIC carrying the group lets in or out.
struct SecurityRuleRecord {
    std::string direction = "in";  // "in" | "out"
    std::string protocol = "any";  // "tcp" | "udp" | "icmp" | "any"
    int port_from = 0;             // tcp/udp: 1..65535; 0 with port_to 0 = every port
    int port_to = 0;
    std::string remote_cidr;   // "" = anyone (unless remote_group)
    std::string remote_group;  // "" = none; else the NICs carrying that group
    bool operator==(const SecurityRuleRecord&) const = default;
};

/// A named set of rules attached to NICs (docs/api.md "Security groups").
struct SecurityGroupRecord {
    std::string name;
    std::string description;
    std::vector<SecurityRuleRecord> rules;
    std::string created_at;
    bool operator==(const SecurityGroupRecord&) const = default;
};

/// An API bearer token. Only the SHA-256 of its secret is stored (the secret is shown once, when
/// it is created); a token is revoked by deleting it.
struct TokenRecord {
    std::string name;
    std::string sha256;        // lowercase hex of SHA-256(secret), 64 characters
    std::string created_at;
    std::string last_used_at;  // "" = never used
    bool operator==(const TokenRecord&) const = default;
};

inline constexpr const char* k_snapshot_creating = "creating";      ///< being taken
inline constexpr const char* k_snapshot_ready = "ready";            ///< complete: may be restored
inline constexpr const char* k_snapshot_incomplete = "incomplete";  ///< corrald ended while taking it

/// A snapshot of a VM (docs/api.md "Snapshots"): its disks at one instant, and with kind
/// "memory" also its memory and device state. Snapshots belong to their VM: deleting the VM
/// deletes their records (the daemon frees their files first).
struct SnapshotRecord {
    std::string vm;
    std::string name;
    std::string description;
    std::string kind = "disk";  // "disk" (the VM was stopped) | "memory" (running or paused: RAM + devices too)
    std::string engine;         // the engine that took it, and the only one that can restore it
    std::string status = k_snapshot_creating;  // k_snapshot_creating | k_snapshot_ready | k_snapshot_incomplete
    std::string dir;            // the folder of its files; "" when it lives in the disks only (qcow2 internal)
    std::int64_t size_bytes = 0;
    int vcpus = 0;              // the VM's shape when it was taken: a memory snapshot restores only into it
    std::int64_t memory_mib = 0;
    std::string created_at;
    std::string parent;         // the snapshot the VM came from when this one was taken; "" for a root
    bool current = false;       // the VM's present state descends from this one (at most one per VM)
    bool operator==(const SnapshotRecord&) const = default;
};

/// The store of VMs, networks, pools, images, tasks and API tokens. Implementations are safe to call from several
/// threads. SqliteInventory is the single-host one; a cluster store can replace it.
class Inventory {
public:
    virtual ~Inventory() = default;

    /// Stores a new VM, setting created_at and updated_at. EEXIST if the name is taken.
    virtual Result<VmRecord> create_vm(const VmRecord& vm) = 0;
    virtual Result<VmRecord> get_vm(const std::string& name) = 0;
    /// Every VM, ordered by name.
    virtual Result<std::vector<VmRecord>> list_vms() = 0;
    /// Replaces the VM named vm.name with `vm` (keeping created_at) and bumps updated_at.
    virtual Result<VmRecord> update_vm(const VmRecord& vm) = 0;
    virtual Result<void> delete_vm(const std::string& name) = 0;
    /// Names of the VMs with a disk on pool/volume, ordered by name.
    virtual Result<std::vector<std::string>> vms_using_volume(const std::string& pool,
                                                              const std::string& volume) = 0;

    /// Stores a new snapshot of snapshot.vm, setting created_at. EEXIST if the VM has one by that
    /// name, ENOENT if there is no such VM.
    virtual Result<SnapshotRecord> create_snapshot(const SnapshotRecord& snapshot) = 0;
    virtual Result<SnapshotRecord> get_snapshot(const std::string& vm, const std::string& name) = 0;
    /// The snapshots of `vm` (of every VM when `vm` is ""), oldest first.
    virtual Result<std::vector<SnapshotRecord>> list_snapshots(const std::string& vm) = 0;
    /// Stores description, status, dir and size_bytes of (snapshot.vm, snapshot.name).
    virtual Result<SnapshotRecord> update_snapshot(const SnapshotRecord& snapshot) = 0;
    /// Makes `name` the VM's current snapshot (no snapshot is current when `name` is ""), in one step.
    virtual Result<void> set_current_snapshot(const std::string& vm, const std::string& name) = 0;
    /// Deletes a snapshot and keeps the tree whole, in one step: its children hang from its parent
    /// from now on, and if it was current, its parent is.
    virtual Result<void> delete_snapshot(const std::string& vm, const std::string& name) = 0;

    /// Stores a new network with its reservations, setting created_at. EEXIST if the name or
    /// the bridge is taken.
    virtual Result<NetworkRecord> create_network(const NetworkRecord& network) = 0;
    virtual Result<NetworkRecord> get_network(const std::string& name) = 0;
    /// Every network, ordered by name.
    virtual Result<std::vector<NetworkRecord>> list_networks() = 0;
    /// Replaces the network named network.name (keeping created_at), its reservations included.
    virtual Result<NetworkRecord> update_network(const NetworkRecord& network) = 0;
    /// EBUSY (naming a VM) while a VM has a NIC on it.
    virtual Result<void> delete_network(const std::string& name) = 0;
    /// Names of the VMs with a NIC on network `name`, ordered by name.
    virtual Result<std::vector<std::string>> vms_using_network(const std::string& name) = 0;

    /// Stores a new security group, setting created_at. EEXIST if the name is taken.
    virtual Result<SecurityGroupRecord> create_security_group(const SecurityGroupRecord& group) = 0;
    virtual Result<SecurityGroupRecord> get_security_group(const std::string& name) = 0;
    /// Every security group, ordered by name.
    virtual Result<std::vector<SecurityGroupRecord>> list_security_groups() = 0;
    /// Replaces the description and rules of group.name (keeping created_at).
    virtual Result<SecurityGroupRecord> update_security_group(const SecurityGroupRecord& group) = 0;
    /// EBUSY naming the VMs whose NICs carry it, or the groups whose rules name it.
    virtual Result<void> delete_security_group(const std::string& name) = 0;
    /// Names of the VMs with a NIC carrying group `name`, ordered by name.
    virtual Result<std::vector<std::string>> vms_using_security_group(const std::string& name) = 0;
    /// Replaces the groups of NIC `nic` of VM `vm`. ENOENT for no such VM or group, EINVAL for a
    /// NIC index the VM does not have.
    virtual Result<VmRecord> set_nic_groups(const std::string& vm, std::size_t nic,
                                            const std::vector<std::string>& groups) = 0;

    virtual Result<PoolRecord> create_pool(const PoolRecord& pool) = 0;
    virtual Result<PoolRecord> get_pool(const std::string& name) = 0;
    virtual Result<std::vector<PoolRecord>> list_pools() = 0;
    virtual Result<PoolRecord> update_pool(const PoolRecord& pool) = 0;
    /// EBUSY while an image is in the pool.
    virtual Result<void> delete_pool(const std::string& name) = 0;

    /// ENOENT if image.pool does not exist.
    virtual Result<ImageRecord> create_image(const ImageRecord& image) = 0;
    virtual Result<ImageRecord> get_image(const std::string& name) = 0;
    virtual Result<std::vector<ImageRecord>> list_images() = 0;
    virtual Result<ImageRecord> update_image(const ImageRecord& image) = 0;
    virtual Result<void> delete_image(const std::string& name) = 0;

    /// A new running task with the next id, progress 0.
    virtual Result<TaskRecord> create_task(const std::string& kind, const std::string& target) = 0;
    /// Stores status, progress, message, error and finished_at of task.id (kind, target and
    /// created_at stay). A task that leaves "running" without finished_at gets the current time.
    /// EINVAL for an unknown status or progress outside 0..1.
    virtual Result<TaskRecord> update_task(const TaskRecord& task) = 0;
    virtual Result<TaskRecord> get_task(const std::string& id) = 0;
    /// At most `limit` tasks, newest first.
    virtual Result<std::vector<TaskRecord>> list_tasks(std::size_t limit = SIZE_MAX) = 0;
    /// Deletes finished tasks older than the newest keep_last_n tasks (running tasks stay);
    /// returns how many were deleted.
    virtual Result<std::size_t> prune_tasks(std::size_t keep_last_n) = 0;

    /// Stores a new token, setting created_at (last_used_at starts empty). EEXIST if the name is
    /// taken.
    virtual Result<TokenRecord> create_token(const TokenRecord& token) = 0;
    /// Every token, ordered by name.
    virtual Result<std::vector<TokenRecord>> list_tokens() = 0;
    /// Revokes a token. ENOENT if there is none by that name.
    virtual Result<void> delete_token(const std::string& name) = 0;
    /// Sets the token's last_used_at to now. ENOENT if there is none by that name.
    virtual Result<void> touch_token(const std::string& name) = 0;

    /// Runs `changes` against this inventory atomically: everything it did is committed if it
    /// returns success, and nothing is if it fails (or throws). Other threads wait meanwhile.
    /// Transactions nest (an inner failure undoes only the inner part if the outer one goes on).
    virtual Result<void> transaction(const std::function<Result<void>(Inventory&)>& changes) = 0;
};

}  // namespace corral::inventory
