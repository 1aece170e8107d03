#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::engine {

/// Where the engine binaries are. The caller (corrald, a test) decides; discover() is a helper.
struct EnginePaths {
    std::filesystem::path corral_vmm;         ///< the native monitor
    std::filesystem::path corral_shim;        ///< the per-VM supervisor (see shim_main.cpp)
    std::filesystem::path qemu;               ///< qemu-system-x86_64 for the emulated engine
    std::filesystem::path calibration_guest;  ///< guests/tiny calibrate.elf (host calibration)

    /// Looks beside `self_exe`, in the build tree's siblings (build/src/daemon -> ../vmm,
    /// ../engine, ../../guests/tiny) and on PATH. A path that was not found stays as the bare
    /// program name, so errors name what is missing.
    static EnginePaths discover(const std::filesystem::path& self_exe);
};

/// One disk of a VM.
struct DiskSpec {
    std::filesystem::path path;
    std::string format = "raw";  ///< "raw" or "qcow2"
    bool read_only = false;
    std::string serial;  ///< shown to the guest (/dev/disk/by-id/virtio-<serial>); may be empty
};

/// One NIC of a VM: an existing tap device (the daemon creates and bridges it).
struct NicSpec {
    std::string tap;
    std::string mac;  ///< 52:54:00:xx:xx:xx; empty lets the engine choose
};

/// Rate limits on a VM's devices, each disk and each NIC direction on its own; 0 is unlimited.
/// Native: corral-vmm's own token buckets (a held request waits; nothing is dropped). Emulated:
/// QEMU's block throttling for disks, Linux traffic control on the taps for NICs (host to guest
/// queued, guest to host policed: net/tap_rate_limit.h).
struct IoLimits {
    uint64_t disk_bytes_per_s = 0;
    uint64_t disk_ops_per_s = 0;
    uint64_t nic_bytes_per_s = 0;
    bool operator==(const IoLimits&) const = default;
};

/// Everything an engine needs to start a VM.
struct LaunchSpec {
    std::string name;
    unsigned vcpus = 1;
    uint64_t memory_mib = 512;
    std::filesystem::path kernel;
    std::filesystem::path initrd;  ///< may be empty
    std::string cmdline;
    std::vector<DiskSpec> disks;
    std::vector<NicSpec> nics;
    /// A per-VM folder the daemon creates: sockets, pid files and logs live there.
    std::filesystem::path run_dir;
    /// Start from a snapshot with memory instead of booting (Instance::save_snapshot()):
    /// emulated, the internal snapshot of that name in the qcow2 disks (QEMU -loadvm); native,
    /// corral-vmm's snapshot folder (--restore; the disks must hold what they held then).
    std::string restore_tag;
    std::filesystem::path restore_dir;
    /// Load the snapshot but keep the vCPUs stopped until Instance::resume() (a clone changes
    /// its NICs' links first: Instance::renew_nics()).
    bool start_paused = false;
    /// The VM generation ID (a GUID, ACPI "VM Generation ID" device) the guest sees. A new one at
    /// every start tells a guest restored from a snapshot that it is a fork: Linux's vmgenid
    /// driver reseeds its RNG, so clones of one snapshot do not share random numbers. Empty: the
    /// engine makes a random one (emulated; the native engine has no such device yet).
    std::string generation_id;
    /// Wait for a live migration instead of booting: where the VM's running instance sends it
    /// (Instance::migrate()), "tcp:HOST:PORT" or "unix:/PATH". Emulated: QEMU `-incoming defer`
    /// and QMP migrate-incoming; native: corral-vmm --migrate-listen. The rest of the spec must
    /// be the source's (memory, vCPUs, disks at the same paths, other taps).
    std::string migrate_listen;
    /// With migrate_listen, the disks (indices in `disks`) a migrating VM's source copies into
    /// this instance while the VM runs there (a disk on a pool the two hosts do not share; see
    /// MigrationRequest::disk_copies). Emulated: an NBD server on `disks_listen` ("unix:/PATH")
    /// exports each one writable as "disk<index>" until stop_disk_server().
    std::vector<size_t> copied_disks;
    std::string disks_listen;
    /// A graphical display of this size in pixels (virtio-gpu, a virtio keyboard and tablet, an
    /// RFB server: Instance::connect_vnc()); 0x0 = none.
    uint32_t display_width = 0;
    uint32_t display_height = 0;
    /// The devices' rate limits from the start (Instance::set_io_limits() changes them).
    IoLimits io_limits;
};

/// Where a live migration is, while it runs (what the engine knows; 0 = not known).
struct MigrationProgress {
    std::string phase;  ///< "copying memory", "switching"
    uint64_t rounds = 0;
    uint64_t bytes_sent = 0;
    uint64_t bytes_remaining = 0;  ///< memory still to send in this round
    uint64_t total_bytes = 0;      ///< the guest's memory
    uint64_t disk_bytes_copied = 0;  ///< phase "copying disks": what the disk copy did so far
    uint64_t disk_bytes_total = 0;   ///< ... of this much (the copied disks' virtual sizes)
};

/// One disk a migration copies to the destination (MigrationRequest::disk_copies).
struct DiskCopy {
    size_t disk = 0;  ///< its index in LaunchSpec::disks
    std::string to;   ///< where the destination's copy is served ("unix:/PATH"), one connection
};

/// Instance::migrate()'s parameters.
struct MigrationRequest {
    std::string to;              ///< the destination's LaunchSpec::migrate_listen
    uint32_t downtime_ms = 300;  ///< the longest pause the guest may see (1-60000)
    uint32_t timeout_s = 600;    ///< not converged by then: cancelled, the VM runs on here
    /// The stream's rate limit in bytes/s (0 = the engine's default; emulated only).
    uint64_t max_bandwidth_bytes = 0;
    /// Emulated: the source QEMU stays paused after the switch instead of quitting, for a caller
    /// that confirms delivery itself (a relayed stream) and then kill()s it or resume()s it.
    bool stay_paused_at_switch = false;
    /// Disks copied while the VM runs, before its memory moves (the destination's
    /// LaunchSpec::copied_disks). Emulated: a block mirror (sync=full, onto an NBD client of
    /// `to`) per disk; memory moves once all are in step, and at the switch each mirror ends
    /// with the copy consistent (the source's own disk stays as it was). Native: ENOTSUP.
    std::vector<DiskCopy> disk_copies{};
    /// Called now and then while the migration runs (on the calling thread); may be empty.
    std::function<void(const MigrationProgress&)> on_progress{};
};

/// What a finished live migration measured.
struct MigrationReport {
    uint64_t rounds = 0;       ///< passes over memory while the guest ran
    uint64_t bytes_sent = 0;   ///< the stream's size
    uint64_t total_ms = 0;     ///< from the request to the switch
    uint64_t downtime_ms = 0;  ///< how long the guest stood still
    uint64_t dirty_rate_bytes_per_s = 0;
};

/// What query() reports about a live VM.
enum class RunState { Running, Paused };
const char* to_string(RunState state);

/// How a VM process ended (from the shim's exit.json).
struct ExitInfo {
    int exit_code = -1;  ///< -1 when it was killed by a signal or the status is unknown
    int signal = 0;      ///< the signal that killed it, or 0
    std::string reason;  ///< a human sentence: "killed by signal 9 (SIGKILL)", "guest powered off"
};

/// Per-disk I/O counters (emulated engine: QMP query-blockstats).
struct DiskCounters {
    std::string device;  ///< "disk0", "disk1", ... in LaunchSpec::disks order
    uint64_t read_bytes = 0;
    uint64_t write_bytes = 0;
    uint64_t read_ops = 0;
    uint64_t write_ops = 0;
    uint64_t read_time_ns = 0, write_time_ns = 0;  ///< total service time of those reads and writes (latency = time / ops)
};

/// The memory balloon of a live VM (virtio-balloon) and the guest's own view of its memory.
/// The target is how much memory the guest is asked to keep: inflating the balloon to
/// `memory - target` takes the rest back to the host.
struct BalloonInfo {
    uint64_t target_bytes = 0;  ///< what set_balloon_target() asked for (the VM's memory until then)
    uint64_t actual_bytes = 0;  ///< what the guest has now: its memory minus the pages in the balloon
    /// The guest's statistics (virtio-balloon stats queue); nullopt until the guest reported them.
    std::optional<uint64_t> guest_free_bytes, guest_available_bytes, guest_total_bytes;
};

/// Where save_snapshot() put the disks' side of a snapshot.
enum class SnapshotDisks {
    Included,      ///< in the disks themselves, at the same instant (QEMU savevm: internal qcow2 snapshots)
    CallerCopies,  ///< nowhere: the VM was left paused, with its disks flushed, for the caller to copy them
};

/// Whether an engine can run VMs on this host, and why (not).
struct Availability {
    bool available = false;
    std::string reason;
};

/// A persistent dirty bitmap to add to disks at a snapshot's instant (Instance::save_disk_snapshot);
/// an empty name adds none.
struct DiskBitmap {
    std::string name{};
    std::string replaces{};  ///< a name prefix: the disks' bitmaps so named are removed then
    /// Disk index -> an empty qcow2 image of that disk's virtual size, open read-write: each
    /// bitmap of the disk named with `replaces`, as it is at the instant (what the guest wrote
    /// since it was added), is copied into that image under its own name before it goes, for
    /// the backup to read the bitmap out of a running VM (docs/backup.md "Incremental"). QEMU
    /// writes it there itself; corral-vmm hands the bits back and the engine writes them.
    std::map<size_t, int> copy_to{};
};

/// Disk index -> why a bitmap of that disk could not be copied (DiskBitmap::copy_to).
using BitmapNotes = std::map<size_t, std::string>;

/// A launched VM process, supervised by a detached corral-shim. Destroying an Instance does
/// NOT stop the VM (corrald restarts leave VMs running; Engine::adopt() re-attaches).
///
/// Errors: ENOENT when the VM is gone, EBUSY when the operation is invalid in its state,
/// ENOTSUP when the engine cannot do it, ETIMEDOUT when the VM did not answer.
class Instance {
public:
    virtual ~Instance() = default;

    /// The VM process (QEMU or corral-vmm).
    virtual pid_t pid() const = 0;
    /// The corral-shim process supervising it.
    virtual pid_t shim_pid() const = 0;
    /// A pidfd of the shim: readable (poll/epoll) once the VM process ended and exit.json is
    /// written. Owned by the Instance.
    virtual int exit_fd() const = 0;
    /// True once the shim ended (non-blocking; reaps the shim if it is our child).
    virtual bool exited() const = 0;
    /// After exit: exit code or signal and a reason. EBUSY while the VM still runs.
    virtual Result<ExitInfo> exit_info() const = 0;

    virtual Result<void> pause() = 0;
    virtual Result<void> resume() = 0;
    /// Resets the VM at once, like its reset button: the guest boots again in the same process,
    /// without being asked (its file systems are not unmounted). Also during a shutdown request.
    virtual Result<void> reset() = 0;
    /// Asks the guest to shut down (ACPI power button / Ctrl-Alt-Del); returns at once. The VM
    /// process ends when the guest has shut down; the caller decides how long to wait.
    virtual Result<void> request_shutdown() = 0;
    /// SIGKILL to the VM process.
    virtual Result<void> kill() = 0;
    virtual Result<RunState> query() = 0;
    /// Saves the memory, vCPU and device state of the running or paused VM. Emulated: as the
    /// internal snapshot `tag` of every writable qcow2 disk (state in the first), the VM running
    /// on as before; returns Included. Native: into the new folder `dir`, the VM left paused;
    /// returns CallerCopies. ENOTSUP when the engine cannot.
    virtual Result<SnapshotDisks> save_snapshot(const std::string& /*tag*/, const std::filesystem::path& /*dir*/) {
        return fail("this engine cannot take snapshots", ENOTSUP);
    }
    /// Takes the internal snapshot `tag` of the live VM's disks `disks` (their indices in
    /// LaunchSpec::disks: the writable qcow2 ones) at one instant, without its memory; the VM
    /// runs on. With `bitmap`, at the same instant each of those disks gets a new persistent
    /// dirty bitmap of that name and loses the bitmaps whose names start with `replaces` (a
    /// backup's generation, docs/backup.md "Incremental"), whose bits at the instant are copied
    /// into bitmap.copy_to; the notes say why a disk's copy got none. ENOTSUP when the engine
    /// cannot while the VM runs.
    virtual Result<BitmapNotes> save_disk_snapshot(const std::string& /*tag*/, const std::vector<size_t>& /*disks*/,
                                                   const DiskBitmap& /*bitmap*/) {
        return fail("this engine cannot snapshot the disks of a running VM", ENOTSUP);
    }
    /// Deletes the internal snapshot `tag` from the disks of the live VM (the process that has
    /// them open must do it). ENOTSUP when the engine keeps no snapshots in its disks.
    virtual Result<void> delete_snapshot(const std::string& /*tag*/) {
        return fail("this engine keeps no snapshots in its disks", ENOTSUP);
    }
    /// Gives the VM's NICs (in LaunchSpec::nics order) the MACs `macs`, on the same backends and
    /// PCI slots: a VM started from another VM's snapshot (a clone) must not keep that VM's
    /// MACs, and a MAC changed in a restored device is not enough (the guest driver read it at
    /// probe time and keeps it). Emulated: each NIC's link goes down (a paused VM sends nothing
    /// from the old MAC once resumed), then it is hot-unplugged (ACPI: the guest must let go
    /// of it, within `timeout`) and a fresh virtio-net device with the new MAC is plugged
    /// into the same slot, which the guest probes like any new NIC. ENOTSUP when the engine
    /// cannot.
    virtual Result<void> renew_nics(const std::vector<std::string>& /*macs*/, std::chrono::seconds /*timeout*/) {
        return fail("this engine cannot replace a running VM's NICs", ENOTSUP);
    }
    /// Moves the running VM live to an instance launched with LaunchSpec::migrate_listen =
    /// `request.to`. On success the VM runs there and this instance's process ends; on any
    /// failure (a refusal, a timeout) it runs on here as before. ENOTSUP when the engine cannot.
    virtual Result<MigrationReport> migrate(const MigrationRequest& /*request*/) {
        return fail("this engine cannot migrate VMs", ENOTSUP);
    }
    /// Ends the NBD server of an instance launched with LaunchSpec::copied_disks (the copy is
    /// done: nothing may write its disks from outside once the guest runs). A no-op otherwise.
    virtual Result<void> stop_disk_server() { return {}; }
    /// A PNG of the VM's screen. ENOTSUP when the VM has no display.
    virtual Result<std::string> screenshot() { return fail("this VM has no display", ENOTSUP); }
    /// A new connection (a connected stream socket) to the VM's RFB (VNC) server; the caller
    /// speaks RFB 3.8 on it from the server's greeting on. Several may be open at once, all
    /// seeing the same screen. ENOTSUP when the VM has no display.
    virtual Result<UniqueFd> connect_vnc() { return fail("this VM has no display", ENOTSUP); }
    /// Asks the guest to keep `bytes` of memory (at most the VM's memory): the balloon inflates or
    /// deflates towards it; returns at once. ENOTSUP when the VM has no balloon.
    virtual Result<void> set_balloon_target(uint64_t /*bytes*/) {
        return fail("this VM has no memory balloon", ENOTSUP);
    }
    /// Gives every disk and NIC of the running VM these rate limits (replacing the ones it had).
    /// ENOTSUP when the engine cannot change them live.
    virtual Result<void> set_io_limits(const IoLimits& /*limits*/) {
        return fail("this engine cannot change rate limits while the VM runs", ENOTSUP);
    }
    /// The balloon's target and actual size and the guest's memory statistics. ENOTSUP as above.
    virtual Result<BalloonInfo> balloon() { return fail("this VM has no memory balloon", ENOTSUP); }
    /// Per-disk I/O counters; empty when the engine has none.
    virtual Result<std::vector<DiskCounters>> counters() = 0;

    /// A unix stream socket carrying the serial console's bytes both ways.
    virtual std::filesystem::path console_socket() const = 0;
    /// A file with the console output so far; empty path when the engine keeps none.
    virtual std::filesystem::path console_log() const = 0;
    virtual const std::filesystem::path& run_dir() const = 0;
};

/// A way to run VMs: "native" (corral-vmm on KVM) or "emulated" (QEMU TCG).
class Engine {
public:
    virtual ~Engine() = default;

    virtual std::string name() const = 0;
    virtual Availability availability() const = 0;
    /// Starts the VM under a detached corral-shim. Fails (with the tail of RUN/monitor.log)
    /// when the engine binary is missing or exits right away.
    virtual Result<std::unique_ptr<Instance>> launch(const LaunchSpec& spec) = 0;
    /// Re-attaches to a VM launched earlier (by this or a previous daemon) from the files in
    /// `run_dir`. ENOENT when it is no longer running.
    virtual Result<std::unique_ptr<Instance>> adopt(const std::filesystem::path& run_dir) = 0;
};

/// Checks what every engine needs: a name, 1-254 vCPUs, 16 MiB-1 TiB of memory, an existing
/// kernel (and initrd), disk formats raw/qcow2 on existing files, taps named, a run_dir.
/// The error names the field.
Result<void> validate_launch_spec(const LaunchSpec& spec);

std::unique_ptr<Engine> make_native_engine(EnginePaths paths);
std::unique_ptr<Engine> make_emulated_engine(EnginePaths paths);
/// "native" or "emulated"; nullptr for another name.
std::unique_ptr<Engine> make_engine(const std::string& name, EnginePaths paths);

}  // namespace corral::engine
