#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "daemon/storage_service.h"
#include "daemon/task_manager.h"
#include "daemon/vm_manager.h"

namespace corral::daemon {

/// Where a VM goes: another corrald's TLS API, its token and how its certificate is checked.
struct MigrationTarget {
    std::string url;          ///< "https://HOST:PORT"
    std::string token;        ///< a bearer token of the destination (never stored or logged)
    std::string fingerprint;  ///< the pinned SHA-256 of its certificate ("" = none)
    std::string ca_cert_pem;  ///< a CA to verify it against, as PEM text ("" = none)
    uint32_t downtime_ms = 300;
    uint32_t bandwidth_mib = 0;  ///< the stream's limit in MiB/s (0 = the engine's default)
};

/// What went through one side of a migration's relay: both corralds log it at the end of the
/// stream, so that bytes lost or reordered between them show (the two must be equal).
struct StreamTally {
    uint64_t bytes = 0;
    uint64_t checksum = 14695981039346656037ull;  // FNV-1a's offset basis
    void add(std::string_view data);
    std::string describe() const;  ///< "N bytes, FNV-1a HEX"
};

/// Live migration of running VMs between two corralds (docs/migration.md "corrald").
///
/// Source: a task checks the destination (POST /migrations there, which refuses before anything
/// moves), then relays the VM instance's migration stream (a unix socket in the VM's run folder)
/// into a WebSocket on the destination's TLS API, authenticated by the token and the migration's
/// one-time id; at the end it confirms the switch (POST /migrations/{id}/finish) or discards the
/// destination's half (DELETE /migrations/{id}). Destination: the incoming migrations, each a VM
/// in state migrating-in whose instance listens on a unix socket its stream is relayed into.
/// The stream is opaque here (QEMU's or corral-vmm's): any engine's migration goes through.
class MigrationService {
public:
    MigrationService(VmManager& vms, StorageService& storage, TaskManager& tasks, std::string hostname,
                     std::filesystem::path scratch_dir);
    /// Stops the reaper and discards the incoming migrations still here (their instances end).
    ~MigrationService();
    MigrationService(const MigrationService&) = delete;
    MigrationService& operator=(const MigrationService&) = delete;

    /// How long an incoming migration waits for its stream before it is discarded (a source
    /// that went away after the pre-flight must not leave a waiting instance here).
    static constexpr std::chrono::seconds k_stream_wait{60};
    /// How long an incoming migration's streams (memory and copied disks) may bring no byte
    /// before it is discarded (a source that stalled mid-stream: frozen, or its network gone
    /// without a reset). The instance here ends, so the stream breaks at the source, whose VM
    /// runs on there.
    static constexpr std::chrono::seconds k_stream_stall_wait{30};
    /// How long an incoming migration whose whole stream arrived waits for the source's finish
    /// (sent right after the stream's end) before it is discarded: the source keeps its paused
    /// copy until the guest runs here, and runs it on there when finish fails (a finish that
    /// comes later finds no migration).
    static constexpr std::chrono::seconds k_switch_wait{30};

    /// Source: migrates the running VM `name` to `target` as a task. EBUSY when the VM cannot
    /// go now (not running, snapshots, another operation); the destination's checks run in the task.
    Result<inventory::TaskRecord> start(const std::string& name, MigrationTarget target);

    /// The identity of each pool (DirectoryPool::identity()) the VM's disks are on.
    Result<nlohmann::json> pool_identities(const inventory::VmRecord& vm);
    /// A disk of a migrating VM as the source describes it to the destination.
    struct DiskInfo {
        std::string pool;
        std::string volume;
        uint64_t size_bytes = 0;  ///< its virtual size
    };
    /// Source: pool, volume and virtual size of each of the VM's disks.
    Result<std::vector<DiskInfo>> disk_infos(const inventory::VmRecord& vm);
    /// Destination: creates an empty qcow2 volume, of the source's virtual size, for each disk of
    /// `disks` whose pool exists here under the same name but is another folder than the
    /// source's (`identities`): the disks the source copies. Refused (nothing created) when such
    /// a volume exists here already or its pool has less free space than the disks' virtual
    /// sizes. A pool missing here is left for the VM's definition to refuse.
    Result<std::vector<DiskInfo>> create_copies(const std::vector<DiskInfo>& disks, const nlohmann::json& identities);
    /// Deletes volumes create_copies() made (a migration that did not switch).
    void delete_copies(const std::vector<DiskInfo>& copies);
    /// Destination: EINVAL naming the disk when a disk's pool here is not the same folder as the
    /// source's (`identities` as pool_identities() made them there) and the disk is not one of
    /// `copies`, or a copied disk cannot move (read-only, or not the emulated engine). Returns
    /// the indices (in vm.disks) of the copied disks.
    Result<std::vector<size_t>> check_shared_pools(const inventory::VmRecord& vm, const nlohmann::json& identities,
                                                   const std::string& origin, const std::vector<DiskInfo>& copies = {});

    /// Destination: remembers an incoming migration of VM `vm` whose instance listens on
    /// `socket` (and serves `copies`, the volumes made for it, on `disk_socket`); returns its
    /// one-time id.
    std::string add_incoming(const std::string& vm, const std::filesystem::path& socket, const std::string& origin,
                             const std::filesystem::path& disk_socket = {}, std::vector<DiskInfo> copies = {});
    /// Destination: the disk server socket of incoming migration `id`, once per copied disk.
    Result<std::filesystem::path> take_disk_stream(const std::string& id);
    /// Destination: the stream socket of incoming migration `id`, once (a second stream is EBUSY).
    Result<std::filesystem::path> take_stream(const std::string& id);
    /// Destination: the stream taken could not reach the instance; its wait goes on, bounded.
    void release_stream(const std::string& id);
    /// Destination: bytes came on a stream (memory or disk) of incoming migration `id`.
    void note_stream_data(const std::string& id);
    /// Destination: the memory stream of `id` reached its end (the source sent all of it).
    void note_stream_end(const std::string& id);
    /// Destination: the switch happened: the VM runs here. Forgets the id.
    Result<std::string> finish(const std::string& id);
    /// Destination: discards the incoming VM (the migration failed at the source). Forgets the id.
    Result<std::string> abort(const std::string& id);
    /// The host name the other side sees in messages.
    const std::string& hostname() const { return m_hostname; }

private:
    struct Incoming {
        std::string vm;
        std::filesystem::path socket;
        std::string origin;
        bool streaming = false;
        bool stream_ended = false;
        std::chrono::steady_clock::time_point created = std::chrono::steady_clock::now();
        std::chrono::steady_clock::time_point last_data;  ///< the last byte on any of its streams
        std::filesystem::path disk_socket;
        std::vector<DiskInfo> copies;  ///< volumes made here for it: they go unless it switches
        size_t disk_streams = 0;
    };
    /// Ends an incoming migration that did not switch: its instance, then the volumes made for it.
    void discard(const Incoming& incoming);
    /// Discards incoming migrations whose stream did not come within k_stream_wait, or stalled
    /// (k_stream_stall_wait).
    void reap();
    Result<std::string> run(const inventory::VmRecord& vm, const MigrationTarget& target, TaskProgress& progress);
    Result<Incoming> take(const std::string& id);

    VmManager& m_vms;
    StorageService& m_storage;
    TaskManager& m_tasks;
    std::string m_hostname;
    std::filesystem::path m_scratch_dir;
    std::mutex m_mutex;
    std::condition_variable m_wake;
    bool m_stopping = false;
    std::map<std::string, Incoming> m_incoming;
    std::thread m_reaper;  // last: started once the rest exists
};

}  // namespace corral::daemon
