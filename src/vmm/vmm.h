#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <vector>

#include "base/result.h"
#include "vmm/config/vm_config.h"
#include "vmm/control/control_request.h"
#include "vmm/console/socket_console.h"
#include "vmm/console/stdio_console.h"
#include "vmm/devices/bus.h"
#include "vmm/kvm/system.h"
#include "vmm/kvm/vm.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/unhandled_access_log.h"
#include "vmm/vcpu_runner.h"
#include "vmm/vm_exit.h"

namespace corral::vmm {

class Serial;
class I8042;
struct BootFiles;
class BootTimingPort;
struct PciDevices;
class ControlServer;
class Rtc;
class AcpiSleepControl;
class Vmm;
namespace snapshot {
struct SnapshotState;
}

/// Checks or changes a configuration read from a snapshot before the VM is built from it.
using ConfigAdjuster = std::function<Result<void>(VmConfig&)>;

Result<std::unique_ptr<Vmm>> build_vmm(const VmConfig& config, kvm::System system, kvm::Vm vm, GuestMemory memory,
                                       std::optional<uint64_t> boot_entry);

/// A running (or ready to run) virtual machine: KVM objects, guest memory, buses, devices and
/// vCPU threads. Built by build_vmm_for_boot(); run() drives it until it exits.
class Vmm {
public:
    ~Vmm();

    /// Starts the vCPUs and runs the main loop (console input, signals, exits) until the VM stops.
    /// The first SIGTERM/SIGINT/SIGHUP asks the guest to shut down with Ctrl-Alt-Del and stops
    /// it if it has not powered off or reset within config.shutdown_timeout_seconds; a second
    /// signal (or a timeout of 0) stops it at once. A guest reset after that request is
    /// reported as Stopped, so --on-reboot restart does not boot the guest again.
    /// `control` (may be null) is the --control socket: its requests are served on this thread
    /// (see handle_control()); it outlives the Vmm, so a --on-reboot restart keeps it.
    Result<VmExit> run(ControlServer* control = nullptr);

    const GuestMemory& memory() const { return m_memory; }
    uint64_t unhandled_access_count() const { return m_unhandled.count(); }

private:
    friend Result<std::unique_ptr<Vmm>> build_vmm(const VmConfig& config, kvm::System system, kvm::Vm vm,
                                                  GuestMemory memory, std::optional<uint64_t> boot_entry);
    friend Result<std::unique_ptr<Vmm>> build_vmm_from_snapshot(const std::string& dir, const ConfigAdjuster& adjust);
    friend Result<std::unique_ptr<Vmm>> receive_migration(int connection, const ConfigAdjuster& adjust);

    Vmm(VmConfig config, kvm::System system, kvm::Vm vm, GuestMemory memory, EventFd exit_event)
        : m_config(std::move(config)),
          m_system(std::move(system)),
          m_vm(std::move(vm)),
          m_memory(std::move(memory)),
          m_exits(std::move(exit_event)) {}

    void stop_vcpus();
    /// Feeds console input to the serial port; false when input is finished.
    void pump_console_input();
    /// SIGTERM, SIGINT, SIGHUP or a control "shutdown": the first asks the guest to shut down,
    /// a second stops it. `why` names the request in the log.
    void request_shutdown(const std::string& why);
    /// Performs one control request on the VMM thread; returns the JSON answer line.
    std::string handle_control(const ControlRequest& request, const ControlServer& control);
    /// Kicks every vCPU out of KVM_RUN and waits until all are parked; false on timeout.
    bool pause_vcpus();
    void resume_vcpus();
    /// Pauses the VM (if running), completes pending vCPU I/O, quiesces the virtio devices,
    /// and writes a snapshot to `dir`; then restarts the devices and, when `resume` is set and
    /// the VM was running, the vCPUs (else the VM stays paused). On an error nothing is left in
    /// `dir` and the VM goes on as before. Returns what the control answer reports.
    Result<nlohmann::json> snapshot(const std::string& dir, bool resume);
    /// Takes (or deletes, `remove`) the internal snapshot `tag` of every writable qcow2 disk at
    /// one instant: the vCPUs stop and the disks are quiesced for as long as that takes (the
    /// metadata only: milliseconds), then all runs on as before. All or nothing: a disk that
    /// fails undoes the snapshots already taken. With `bitmap`, at the same instant and once
    /// every snapshot is taken, each disk changes its backup generation (BlockDevice::
    /// rotate_bitmaps); a disk that cannot keeps its bitmaps and says why, the snapshot stands.
    /// Returns the control answer ({"disks": N, "bitmaps": [one per --disk]}, vmm_snapshot.cpp).
    Result<nlohmann::json> disk_snapshot(const std::string& tag, bool remove,
                                         const std::optional<DiskSnapshotBitmap>& bitmap);
    /// The KVM, vCPU and device state of this VM, as a snapshot records it. The vCPUs must be
    /// paused with their pending I/O completed, and the virtio devices quiesced.
    Result<snapshot::SnapshotState> capture_state() const;
    /// Live migration to the destination `request.migrate_to` (vmm_migration.cpp): on success
    /// the VM runs there and this one ends (reported as Stopped, "migrated to ..."); on any
    /// failure before the switch the VM goes on here as before. Returns the control answer's
    /// figures (rounds, bytes, rates, total time, downtime).
    Result<nlohmann::json> migrate(const ControlRequest& request);
    /// Turns KVM's dirty-page logging on or off for every guest RAM slot.
    Result<void> set_dirty_logging(bool on);
    /// Puts a snapshot's KVM, vCPU and device state into this freshly built VM, and restarts
    /// its virtio devices.
    Result<void> restore_state(const snapshot::SnapshotState& state);

    VmConfig m_config;
    kvm::System m_system;
    kvm::Vm m_vm;
    GuestMemory m_memory;
    ExitLatch m_exits;
    UnhandledAccessLog m_unhandled;
    Bus m_pio_bus;
    Bus m_mmio_bus;
    std::unique_ptr<InterruptLine> m_com1_irq;
    std::unique_ptr<InterruptLine> m_keyboard_irq;
    std::unique_ptr<InterruptLine> m_mouse_irq;
    std::shared_ptr<Serial> m_serial;
    std::shared_ptr<I8042> m_i8042;
    std::shared_ptr<Rtc> m_rtc;
    std::shared_ptr<AcpiSleepControl> m_acpi;
    /// Set by the first stop signal: when the guest's time to shut down runs out.
    std::optional<std::chrono::steady_clock::time_point> m_shutdown_deadline;
    /// Set by a control "pause" once every vCPU is parked; cleared by "resume".
    bool m_paused = false;
    std::shared_ptr<BootTimingPort> m_boot_timing;
    std::optional<StdioConsole> m_console;
    std::unique_ptr<SocketConsole> m_socket_console;
    std::vector<uint8_t> m_pending_input;
    std::vector<std::unique_ptr<VcpuRunner>> m_vcpus;
    // Last, so it is destroyed first: it stops the device event loop (see pci_setup.h).
    std::shared_ptr<PciDevices> m_pci;
};

/// Creates the VM described by `config`: loads the kernel and initrd, writes the boot tables,
/// attaches devices and creates the vCPUs in their boot state. Nothing runs yet.
/// `files` are the kernel and initrd read by load_boot_files().
Result<std::unique_ptr<Vmm>> build_vmm_for_boot(const VmConfig& config, const BootFiles& files);

/// Creates the VM saved in the snapshot folder `dir` (see snapshot_file.h), with the
/// configuration it was taken with and guest memory mapped lazily from its memory file, in its
/// saved state. Refuses, with the reason and before any guest runs, a snapshot of another
/// format version, with a bad checksum or a truncated memory file, whose devices do not match
/// (a disk of another size), or whose guest saw CPU features this host lacks.
/// `adjust` (may be empty) checks the snapshot's configuration against the command line's and
/// applies what may change (see apply_restore_flags()).
Result<std::unique_ptr<Vmm>> build_vmm_from_snapshot(const std::string& dir, const ConfigAdjuster& adjust);

/// The KVM VM and guest memory of a VM about to arrive by live migration, before its devices.
struct IncomingVm {
    kvm::System system;
    kvm::Vm vm;
    GuestMemory memory;
};
/// Creates the KVM VM and the (zeroed) guest memory for `config`, after checking that this host
/// can give each vCPU the CPU features in `cpuids` (the tables it was given at the source);
/// refuses with the missing features named.
Result<IncomingVm> prepare_incoming_vm(const VmConfig& config, std::span<const std::vector<kvm_cpuid_entry2>> cpuids);

/// The destination of a live migration (vmm_migration.cpp): reads the stream from the source
/// connected on `connection` (see migration/wire.h), builds the VM from it, and returns it ready
/// to run once the source has handed over (GO__). `adjust` checks and applies the command
/// line's flags as for a restore. Any error (a refused CPU, a hostile or truncated stream, the
/// source gone before the switch) is returned, with the reason sent to the source if it listens.
Result<std::unique_ptr<Vmm>> receive_migration(int connection, const ConfigAdjuster& adjust);
/// Listens on `address` (unix:PATH or tcp:HOST:PORT; a unix socket is removed afterwards),
/// takes the first connection and receives the VM with receive_migration().
Result<std::unique_ptr<Vmm>> receive_migration_at(const std::string& address, const ConfigAdjuster& adjust);

}  // namespace corral::vmm
