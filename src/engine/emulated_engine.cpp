#include "engine/emulated_engine.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

#include <fmt/format.h>

#include <map>

#include "base/log.h"
#include "base/private_file.h"
#include "base/unix_socket.h"
#include "engine/console_log.h"
#include "engine/process.h"
#include "engine/qmp_client.h"
#include "engine/shim_process.h"
#include "engine/vm_handoff.h"
#include "engine/vm_user.h"
#include "net/persistent_tap.h"
#include "net/tap_rate_limit.h"

namespace corral::engine {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

constexpr auto k_qmp_connect_timeout = 3s;
constexpr auto k_qmp_command_timeout = 10s;
/// QEMU's own default for max-bandwidth (MAX_THROTTLE): what a request without a limit gets.
constexpr uint64_t k_default_bandwidth = 128ull << 20;
/// savevm writes all of guest RAM into the first disk; under TCG on a loaded host with a few
/// GiB that takes a while (QEMU answers only when it is done).
constexpr auto k_savevm_timeout = 600s;
/// QEMU answers QMP once its arguments are parsed and the machine is built; under TCG on a
/// loaded host that can take a few seconds.
constexpr auto k_start_timeout = 30s;
/// How long a disk copy may take to end at the switch (what the guest wrote last goes out).
constexpr auto k_copy_end_wait = 60s;
/// A PNG of the largest display (3840x2160) is far below this even uncompressed.
constexpr size_t k_max_screenshot_bytes = 64 * 1024 * 1024;

/// The whole file behind `fd` (read with pread from offset 0), at most `limit` bytes.
Result<std::string> read_whole(int fd, size_t limit, const char* what) {
    std::string data;
    char buffer[65536];
    for (;;) {
        ssize_t n = ::pread(fd, buffer, sizeof(buffer), static_cast<off_t>(data.size()));
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno(fmt::format("cannot read {}", what));
        }
        if (n == 0) break;
        data.append(buffer, static_cast<size_t>(n));
        if (data.size() > limit) return fail(fmt::format("{} is larger than {} bytes", what, limit), EFBIG);
    }
    if (data.empty()) return fail(fmt::format("{} is empty", what), EIO);
    return data;
}

/// The balloon's QOM path (its -device id is "balloon0").
constexpr const char* k_balloon_qom_path = "/machine/peripheral/balloon0";
/// How often QEMU asks the guest for its memory statistics, in seconds.
constexpr int k_balloon_stats_interval_s = 2;
constexpr const char* k_balloon_target_file = "balloon-target";

void write_balloon_target(const fs::path& run_dir, uint64_t bytes) {
    std::error_code error;
    fs::path tmp = run_dir / (std::string(k_balloon_target_file) + ".tmp");
    {
        std::FILE* file = std::fopen(tmp.c_str(), "we");
        if (!file)
            return;  // the target is a convenience for balloon(); the balloon itself is set
        std::fprintf(file, "%llu\n", static_cast<unsigned long long>(bytes));
        std::fclose(file);
    }
    fs::rename(tmp, run_dir / k_balloon_target_file, error);
}

std::optional<uint64_t> read_balloon_target(const fs::path& run_dir) {
    std::FILE* file = std::fopen((run_dir / k_balloon_target_file).c_str(), "re");
    if (!file)
        return std::nullopt;
    unsigned long long value = 0;
    int got = std::fscanf(file, "%llu", &value);
    std::fclose(file);
    if (got != 1)
        return std::nullopt;
    return value;
}

// The VM's taps, one a line, for set_io_limits() after a corrald restart (adopt() knows only
// the run folder; QEMU holds the taps as descriptors it cannot name).
constexpr const char* k_taps_file = "taps";

void write_taps(const fs::path& run_dir, const std::vector<NicSpec>& nics) {
    std::string lines;
    for (const auto& nic : nics)
        lines += nic.tap + "\n";
    ignore_error(write_file_atomically((run_dir / k_taps_file).string(), lines, 0600),
                 "without the file only a live NIC limit change fails, saying so");
}

Result<std::vector<std::string>> read_taps(const fs::path& run_dir) {
    std::ifstream file(run_dir / k_taps_file);
    if (!file)
        return fail(fmt::format("the VM's taps are not on record ({} is missing)", (run_dir / k_taps_file).string()),
                    ENOENT);
    std::vector<std::string> taps;
    for (std::string line; std::getline(file, line);)
        if (!line.empty())
            taps.push_back(line);
    return taps;
}

/// QEMU option values: a ',' inside a value is written ",,".
std::string escape(const std::string& value) {
    std::string out;
    for (char c : value) {
        out += c;
        if (c == ',')
            out += ',';
    }
    return out;
}

std::string describe_qemu_exit(int exit_code, const std::string& tail) {
    if (exit_code == 0)
        return "QEMU exited normally (the guest powered off or was shut down)";
    std::string reason = fmt::format("QEMU exited with code {}", exit_code);
    if (!tail.empty())
        reason += ": " + tail;
    return reason;
}

class EmulatedInstance final : public Instance {
public:
    explicit EmulatedInstance(ShimProcess process) : m_process(std::move(process)) {}

    pid_t pid() const override { return m_process.vm_pid(); }
    pid_t shim_pid() const override { return m_process.shim_pid(); }
    int exit_fd() const override { return m_process.pidfd(); }
    bool exited() const override { return m_process.exited(); }
    Result<ExitInfo> exit_info() const override { return m_process.exit_info(); }

    Result<void> pause() override { return control("pause", "stop"); }
    Result<void> resume() override { return control("resume", "cont"); }
    Result<void> reset() override { return control("reset", "system_reset"); }
    Result<void> request_shutdown() override { return control("shut down", "system_powerdown"); }
    Result<void> kill() override { return m_process.signal_vm(SIGKILL); }

    /// QEMU's savevm: it stops the VM, writes RAM and device state into the first writable
    /// qcow2 disk and takes an internal snapshot `tag` of every writable disk, then lets the VM
    /// run on if it ran. Disks and memory are thus one atomic point, kept inside the qcow2 files
    /// (qemu-img snapshot -l lists them), and QEMU needs no new file: as the VM uid it could open
    /// none (see vm_user.h). Migration to a file would need a descriptor handed over and a
    /// separate disk snapshot at the same instant.
    Result<SnapshotDisks> save_snapshot(const std::string& tag, const fs::path&) override {
        TRY_VOID(human("take snapshot " + tag + " of", "savevm " + tag, k_savevm_timeout));
        return SnapshotDisks::Included;
    }

    Result<void> renew_nics(const std::vector<std::string>& macs, std::chrono::seconds timeout) override {
        // Silent first: a clone resumed with its source's MAC must not send a frame from it.
        for (size_t i = 0; i < macs.size(); ++i)
            TRY(qmp("take the NIC link down of", "set_link", {{"name", fmt::format("nic{}", i)}, {"up", false}}));
        // The guest takes part in an ACPI unplug: it must run.
        if (auto state = TRY(query()); state == RunState::Paused)
            TRY_VOID(resume());
        for (size_t i = 0; i < macs.size(); ++i) {
            const std::string id = fmt::format("nic{}", i);
            const std::string path = "/machine/peripheral/" + id;
            // The same slot again: the VM's devices stay where its command line puts them, so
            // that a later snapshot of it loads into the same machine.
            auto devfn =
                TRY(qmp("read the PCI address of " + id + " of", "qom-get", {{"path", path}, {"property", "addr"}}));
            if (!devfn.is_number_integer())
                return fail(fmt::format("QEMU gave {} no PCI address: {}", id, devfn.dump()), EIO);
            const int address = devfn.get<int>();
            const std::string addr = fmt::format("{:x}.{:x}", address >> 3, address & 7);
            TRY(qmp("unplug " + id + " of", "device_del", {{"id", id}}));
            auto deadline = std::chrono::steady_clock::now() + timeout;
            for (;;) {
                auto devices = TRY(qmp("list the devices of", "qom-list", {{"path", "/machine/peripheral"}}));
                bool present = false;
                for (const auto& device : devices)
                    if (device.value("name", "") == id)
                        present = true;
                if (!present)
                    break;
                if (std::chrono::steady_clock::now() > deadline)
                    return fail(fmt::format("the guest did not release {} within {} s (ACPI PCI hot-unplug: a "
                                            "guest without acpiphp ignores it)",
                                            id, timeout.count()),
                                ETIMEDOUT);
                std::this_thread::sleep_for(100ms);
            }
            TRY(qmp("plug a new " + id + " into", "device_add",
                    {{"driver", "virtio-net-pci"},
                     {"id", id},
                     {"netdev", fmt::format("net{}", i)},
                     {"mac", macs[i]},
                     {"addr", addr}}));
        }
        return {};
    }

    /// One QMP transaction of internal snapshots: all disks or none, at one instant, while the
    /// guest runs (QEMU drains their in-flight requests first). The old generation bitmaps are
    /// merged into the copies' images (bitmap.copy_to) in the same transaction, so a copy holds
    /// exactly what the guest wrote up to the snapshot; QEMU writes a persistent bitmap into its
    /// image when the image's node closes (blockdev-del), and corrald reads it from there.
    Result<BitmapNotes> save_disk_snapshot(const std::string& tag, const std::vector<size_t>& disks,
                                           const DiskBitmap& bitmap) override {
        struct Old {
            std::string name;
            uint64_t granularity = 0;
            bool inconsistent = false;
        };
        // The bitmaps each disk has now (query-block: inserted.dirty-bitmaps), to drop the
        // generations `bitmap` replaces in the same transaction, and each disk's size.
        std::map<std::string, std::vector<Old>> old;
        std::map<std::string, uint64_t> sizes;
        if (!bitmap.replaces.empty()) {
            auto blocks = TRY(qmp("list the disks of", "query-block"));
            for (const auto& block : blocks.is_array() ? blocks : nlohmann::json::array()) {
                const auto inserted = block.value("inserted", nlohmann::json::object());
                const std::string device = block.value("device", "");
                sizes[device] = inserted.value("image", nlohmann::json::object()).value("virtual-size", uint64_t{0});
                for (const auto& b : inserted.value("dirty-bitmaps", nlohmann::json::array()))
                    if (b.value("name", "").starts_with(bitmap.replaces))
                        old[device].push_back(
                            {b.value("name", ""), b.value("granularity", uint64_t{0}), b.value("inconsistent", false)});
            }
        }
        BitmapNotes notes;
        std::vector<std::pair<size_t, std::string>> nodes;  // the copies' nodes, closed after the transaction
        std::vector<int64_t> sets;                          // their fd sets
        auto taken = with_qmp("take disk snapshot " + tag + " of", [&](QmpClient& client) -> Result<nlohmann::json> {
            auto run = [&]() -> Result<nlohmann::json> {
                nlohmann::json actions = nlohmann::json::array();
                for (size_t index : disks) {
                    const std::string device = fmt::format("disk{}", index);
                    actions.push_back(
                        {{"type", "blockdev-snapshot-internal-sync"}, {"data", {{"device", device}, {"name", tag}}}});
                    if (bitmap.name.empty())
                        continue;
                    std::string node;
                    if (auto to = bitmap.copy_to.find(index); to != bitmap.copy_to.end() && !old[device].empty()) {
                        // The copy's image must have the disk's size: QEMU merges only bitmaps
                        // of one size (qcow2 header: the size is the big-endian u64 at 24).
                        uint8_t header[32] = {};
                        uint64_t size = 0;
                        if (::pread(to->second, header, sizeof header, 0) == ssize_t(sizeof header))
                            for (int i = 24; i < 32; ++i)
                                size = size << 8 | header[i];
                        if (size != sizes[device]) {
                            notes[index] = fmt::format("the disk's size changed during the backup ({} bytes, not {})",
                                                       sizes[device], size);
                        } else {
                            auto added = TRY(client.execute_with_fd("add-fd", nlohmann::json::object(), to->second,
                                                                    k_qmp_command_timeout));
                            const int64_t set = added.value("fdset-id", int64_t{-1});
                            sets.push_back(set);
                            node = fmt::format("corral-bitmaps{}", index);
                            TRY(client.execute(
                                "blockdev-add",
                                {{"driver", "qcow2"},
                                 {"node-name", node},
                                 {"file", {{"driver", "file"}, {"filename", fmt::format("/dev/fdset/{}", set)}}}},
                                k_qmp_command_timeout));
                            nodes.emplace_back(index, node);
                        }
                    }
                    for (const auto& b : old[device]) {
                        if (!node.empty() && b.inconsistent) {
                            // QEMU loaded it flagged in use: it missed writes when its process
                            // ended without closing the disk, and it cannot be merged.
                            notes[index] =
                                fmt::format("bitmap {} was in use at a crash (QEMU did not close the disk)", b.name);
                        } else if (!node.empty()) {
                            TRY(client.execute("block-dirty-bitmap-add",
                                               {{"node", node},
                                                {"name", b.name},
                                                {"granularity", b.granularity},
                                                {"persistent", true}},
                                               k_qmp_command_timeout));
                            actions.push_back(
                                {{"type", "block-dirty-bitmap-merge"},
                                 {"data",
                                  {{"node", node},
                                   {"target", b.name},
                                   {"bitmaps", nlohmann::json::array({{{"node", device}, {"name", b.name}}})}}}});
                        }
                        actions.push_back(
                            {{"type", "block-dirty-bitmap-remove"}, {"data", {{"node", device}, {"name", b.name}}}});
                    }
                    actions.push_back({{"type", "block-dirty-bitmap-add"},
                                       {"data", {{"node", device}, {"name", bitmap.name}, {"persistent", true}}}});
                }
                return client.execute("transaction", {{"actions", actions}}, k_savevm_timeout);
            };
            auto result = run();
            // Closing a copy's node writes its bitmaps into its image.
            for (const auto& [index, node] : nodes)
                if (auto closed = client.execute("blockdev-del", {{"node-name", node}}, k_qmp_command_timeout);
                    !closed && result) {
                    notes[index] =
                        fmt::format("QEMU did not write out the copy of its bitmap: {}", closed.error().message());
                }
            for (int64_t set : sets)
                ignore_error(client.execute("remove-fd", {{"fdset-id", set}}, k_qmp_command_timeout),
                             "QEMU closed the copy with its node; the set goes with the process at the latest");
            return result;
        });
        if (!taken)
            return fail(taken.error());
        return notes;
    }

    /// QEMU's own pre-copy migration (QMP migrate to the destination QEMU's migrate-incoming
    /// URI), followed with query-migrate. QEMU stops the VM for the last pages itself and, when
    /// a migration fails, lets it run on. Once completed the source QEMU is told to quit.
    Result<MigrationReport> migrate(const MigrationRequest& request) override {
        auto started = std::chrono::steady_clock::now();
        auto refused = [&](const Error& error) {
            return fail(error.with_context(fmt::format("migrating to {}; the VM runs on here", request.to)));
        };
        // Both set every time: a QEMU keeps the last migration's parameters.
        const uint64_t bandwidth = request.max_bandwidth_bytes ? request.max_bandwidth_bytes : k_default_bandwidth;
        if (auto set = qmp("set the migration parameters of", "migrate-set-parameters",
                           {{"downtime-limit", request.downtime_ms}, {"max-bandwidth", bandwidth}});
            !set)
            return refused(set.error());
        auto deadline = started + std::chrono::seconds(request.timeout_s);
        // Disks first: memory moves once every copy is in step (the mirrors keep them so).
        if (auto copied = copy_disks(request, deadline); !copied) {
            ignore_error(end_disk_copies(request.disk_copies, Mirror::Cancel), "the copy's error is the one to report");
            return refused(copied.error());
        }
        auto give_up = [&](Error error) -> Result<MigrationReport> {
            ignore_error(end_disk_copies(request.disk_copies, Mirror::Cancel), "the migration's error is the one to report");
            return fail(std::move(error));
        };
        // Answers at once; the migration runs in QEMU's migration thread.
        if (auto started_migration = start_migration(request.to); !started_migration)
            return give_up(Error(started_migration.error().with_context(
                fmt::format("migrating to {}; the VM runs on here", request.to))));
        for (;;) {
            auto status = qmp("follow the migration of", "query-migrate");
            if (!status)
                return give_up(status.error());
            std::string state = status->value("status", "");
            if (request.on_progress && (state == "active" || state == "device")) {
                const auto ram = status->value("ram", nlohmann::json::object());
                MigrationProgress now;
                now.phase = state == "device" ? "switching" : "copying memory";
                now.rounds = ram.value("dirty-sync-count", uint64_t{0});
                now.bytes_sent = ram.value("transferred", uint64_t{0});
                now.bytes_remaining = ram.value("remaining", uint64_t{0});
                now.total_bytes = ram.value("total", uint64_t{0});
                request.on_progress(now);
            }
            if (state == "completed") {
                const auto ram = status->value("ram", nlohmann::json::object());
                MigrationReport report;
                report.rounds = ram.value("dirty-sync-count", uint64_t{0});
                report.bytes_sent = ram.value("transferred", uint64_t{0});
                report.total_ms = status->value("total-time", uint64_t{0});
                report.downtime_ms = status->value("downtime", uint64_t{0});
                report.dirty_rate_bytes_per_s =
                    ram.value("dirty-pages-rate", uint64_t{0}) * ram.value("page-size", uint64_t{4096});
                // The guest is paused: each mirror sends what it wrote last and ends in step,
                // without switching this QEMU to the copy. A copy that cannot end: the VM runs
                // on here (`cont` takes its disks back), the destination's half goes.
                if (auto ended = end_disk_copies(request.disk_copies, Mirror::Complete); !ended) {
                    ignore_error(end_disk_copies(request.disk_copies, Mirror::Cancel), "the copy's error is the one to report");
                    auto resumed = qmp("resume", "cont");
                    return fail(fmt::format("migrating to {}: {}; {}", request.to, ended.error().message(),
                                            resumed ? "the VM runs on here"
                                                    : "and it cannot resume here: " + resumed.error().message()),
                                EIO);
                }
                // The VM runs at the destination; this QEMU holds only its stopped copy (kept,
                // paused, when the caller confirms the delivery: `cont` would run it on here).
                if (!request.stay_paused_at_switch)
                    ignore_error(qmp("end", "quit"), "the process ends either way; the shim records it");
                return report;
            }
            if (state == "failed" || state == "cancelled")
                return give_up(
                    Error(fmt::format("migrating to {}: QEMU's migration {}: {}; the VM runs on here", request.to,
                                      state, status->value("error-desc", std::string("no reason given"))),
                          EIO));
            if (std::chrono::steady_clock::now() > deadline) {
                ignore_error(qmp("cancel the migration of", "migrate_cancel"), "the timeout is the error to report");
                return give_up(
                    Error(fmt::format("migrating to {}: not done within timeout_s {}; cancelled, the VM runs on here",
                                      request.to, request.timeout_s),
                          ETIMEDOUT));
            }
            std::this_thread::sleep_for(50ms);
        }
    }

    enum class Mirror { Complete, Cancel };

    /// Starts a block mirror (sync=full) of each disk of `request.disk_copies` onto an NBD
    /// client of the destination's export, and waits until all are in step (READY), reporting
    /// the bytes copied. The NBD connection is made here (corrald's socket: the VM's uid could
    /// reach none) and handed to QEMU (getfd; blockdev-add's "fd" address takes it by name).
    Result<void> copy_disks(const MigrationRequest& request, std::chrono::steady_clock::time_point deadline) {
        for (const auto& copy : request.disk_copies) {
            if (!copy.to.starts_with("unix:"))
                return fail(fmt::format("disk copy target {} is not unix:PATH", copy.to), EINVAL);
            const std::string id = fmt::format("corral-copy{}", copy.disk);
            auto stream = TRY(connect_unix_socket(copy.to.substr(5)));
            TRY(with_qmp("start the disk copy of", [&](QmpClient& client) -> Result<nlohmann::json> {
                TRY(client.execute_with_fd("getfd", {{"fdname", id}}, stream.get(), k_qmp_command_timeout));
                TRY(client.execute("blockdev-add",
                                   {{"driver", "nbd"},
                                    {"node-name", id},
                                    {"server", {{"type", "fd"}, {"str", id}}},
                                    {"export", fmt::format("disk{}", copy.disk)}},
                                   k_qmp_command_timeout));
                nlohmann::json mirror = {{"job-id", id},
                                         {"device", fmt::format("disk{}", copy.disk)},
                                         {"target", id},
                                         {"sync", "full"},
                                         {"auto-dismiss", false}};
                // The stream's limit holds for the disks too (per disk, as QEMU limits each job).
                if (request.max_bandwidth_bytes)
                    mirror["speed"] = request.max_bandwidth_bytes;
                return client.execute("blockdev-mirror", mirror, k_qmp_command_timeout);
            }));
        }
        for (;;) {
            auto jobs = TRY(copy_jobs(request.disk_copies));
            MigrationProgress now;
            now.phase = "copying disks";
            size_t ready = 0;
            for (const auto& job : jobs) {
                const std::string status = job.value("status", "");
                if (job.contains("error") || status == "concluded" || status == "aborting" || status == "null")
                    return fail(fmt::format("the copy of {} failed: {}", job.value("id", ""),
                                            job.value("error", std::string("the job ended"))),
                                EIO);
                now.disk_bytes_copied += job.value("current-progress", uint64_t{0});
                now.disk_bytes_total += job.value("total-progress", uint64_t{0});
                if (status == "ready")
                    ++ready;
            }
            if (request.on_progress)
                request.on_progress(now);
            if (ready == request.disk_copies.size())
                return {};
            if (std::chrono::steady_clock::now() > deadline)
                return fail(fmt::format("the disks were not copied within timeout_s {}", request.timeout_s), ETIMEDOUT);
            std::this_thread::sleep_for(100ms);
        }
    }

    /// query-jobs, only this migration's disk copies (each one must be there).
    Result<std::vector<nlohmann::json>> copy_jobs(const std::vector<DiskCopy>& copies) {
        auto all = TRY(qmp("follow the disk copy of", "query-jobs"));
        std::vector<nlohmann::json> jobs;
        for (const auto& copy : copies) {
            const std::string id = fmt::format("corral-copy{}", copy.disk);
            bool found = false;
            for (const auto& job : all)
                if (job.value("id", "") == id) {
                    jobs.push_back(job);
                    found = true;
                }
            if (!found)
                return fail(fmt::format("the copy of disk{} is gone", copy.disk), EIO);
        }
        return jobs;
    }

    /// Ends the mirrors: Complete (block-job-cancel after READY: the copy ends in step with
    /// this disk, which stays the VM's here) or Cancel (force: a failed migration; whatever
    /// the copy holds is the destination's to discard); then drops their NBD clients.
    Result<void> end_disk_copies(const std::vector<DiskCopy>& copies, Mirror how) {
        if (copies.empty())
            return {};
        for (const auto& copy : copies)
            ignore_error(qmp("end the disk copy of", "block-job-cancel",
                             {{"device", fmt::format("corral-copy{}", copy.disk)}, {"force", how == Mirror::Cancel}}),
                         "a copy that never started or already ended has no job to end");
        std::optional<Error> failed;
        const auto deadline = std::chrono::steady_clock::now() + k_copy_end_wait;
        for (const auto& copy : copies) {
            const std::string id = fmt::format("corral-copy{}", copy.disk);
            for (;;) {
                auto jobs = copy_jobs({copy});
                if (!jobs)
                    break;  // no job (never started)
                const auto& job = jobs->front();
                if (job.value("status", "") == "concluded") {
                    if (job.contains("error") && !failed)
                        failed = Error(
                            fmt::format("the copy of disk{} failed at its end: {}", copy.disk, job.value("error", "")),
                            EIO);
                    break;
                }
                if (std::chrono::steady_clock::now() > deadline) {
                    if (!failed)
                        failed = Error(fmt::format("the copy of disk{} did not end within {} s", copy.disk,
                                                   k_copy_end_wait.count()),
                                       ETIMEDOUT);
                    ignore_error(qmp("end the disk copy of", "block-job-cancel", {{"device", id}, {"force", true}}),
                                 "the timeout is the error to report");
                    break;
                }
                std::this_thread::sleep_for(50ms);
            }
            ignore_error(qmp("dismiss the disk copy of", "job-dismiss", {{"id", id}}), "a job that is gone is fine");
            ignore_error(qmp("drop the disk copy's target of", "blockdev-del", {{"node-name", id}}),
                         "a node that is gone (or never came) is fine");
        }
        if (failed && how == Mirror::Complete)
            return fail(*failed);
        return {};
    }

    /// A destination launched with LaunchSpec::copied_disks: an NBD server on `uri` (a socket
    /// this process makes and hands over, as for the migration's listener) exporting each of
    /// those disks writable as "disk<index>". QEMU activates an export's node at once, so the
    /// copy lands while the instance still waits for the memory.
    Result<void> serve_disks(const std::string& uri, const std::vector<size_t>& disks) {
        if (!uri.starts_with("unix:"))
            return fail(fmt::format("disks_listen {} is not unix:PATH", uri), EINVAL);
        auto listener = TRY(listen_unix_socket(uri.substr(5), {.backlog = 4, .permissions = 0600}));
        auto block = TRY(qmp("list the disks of", "query-block"));
        TRY(with_qmp("serve the copied disks of", [&](QmpClient& client) -> Result<nlohmann::json> {
            TRY(client.execute_with_fd("getfd", {{"fdname", "corral-disks-in"}}, listener.get(),
                                       k_qmp_command_timeout));
            // nbd-server-start takes QEMU's legacy socket address ({"data": ...}).
            TRY(client.execute("nbd-server-start", {{"addr", {{"type", "fd"}, {"data", {{"str", "corral-disks-in"}}}}}},
                               k_qmp_command_timeout));
            for (size_t index : disks) {
                const std::string device = fmt::format("disk{}", index);
                std::string node;
                for (const auto& entry : block)
                    if (entry.value("device", "") == device && entry.contains("inserted"))
                        node = entry["inserted"].value("node-name", "");
                if (node.empty())
                    return fail(fmt::format("QEMU has no {} to serve", device), EIO);
                TRY(client.execute("block-export-add",
                                   {{"type", "nbd"},
                                    {"id", "corral-copy" + std::to_string(index)},
                                    {"name", device},
                                    {"node-name", node},
                                    {"writable", true}},
                                   k_qmp_command_timeout));
            }
            return nlohmann::json::object();
        }));
        m_serving_disks = true;
        return {};
    }

    Result<void> stop_disk_server() override {
        if (!m_serving_disks)
            return {};
        // Ends the exports too (QEMU closes every NBD export with its server).
        TRY(qmp("stop the disk server of", "nbd-server-stop"));
        m_serving_disks = false;
        return {};
    }

    /// QMP migrate to `to`. A unix socket is connected by this process (corrald, root), not by
    /// QEMU: QEMU runs as the VM's own uid (vm_user.h), which may not reach a socket corrald
    /// made; the connected descriptor goes to QEMU (getfd) and QEMU migrates into it ("fd:").
    Result<void> start_migration(const std::string& to) {
        if (!to.starts_with("unix:")) {
            TRY(qmp("migrate", "migrate", {{"uri", to}}));
            return {};
        }
        auto stream = TRY(connect_unix_socket(to.substr(5)));
        TRY(with_qmp("migrate", [&](QmpClient& client) -> Result<nlohmann::json> {
            TRY(client.execute_with_fd("getfd", {{"fdname", "corral-migrate-out"}}, stream.get(),
                                       k_qmp_command_timeout));
            return client.execute("migrate", {{"uri", "fd:corral-migrate-out"}}, k_qmp_command_timeout);
        }));
        return {};
    }

    /// A destination launched with LaunchSpec::migrate_listen: QEMU (started with -incoming
    /// defer) listens there now. For "unix:PATH" this process makes the listening socket (the
    /// VM's uid may not create files in its run folder: vm_user.h), private to root, and hands
    /// it to QEMU; QEMU 7.2's migrate-incoming takes a listening descriptor only as a socket
    /// address of type fd, which its URI syntax spells "tcp:fd:NAME" (QEMU 8.2 has "channels").
    Result<void> listen_for_migration(const std::string& uri) {
        // The disks stay inactive here once the stream loaded, until `cont` (QEMU's default
        // takes their write locks at the end of the load, paused or not): the source's paused
        // copy may still take them back and run on, and whichever of the two QEMUs `cont`s first
        // holds the disks, the other's `cont` failing with "Failed to get "write" lock"
        // (docs/migration.md "corrald", the switch).
        TRY(qmp("set the migration capabilities of", "migrate-set-capabilities",
                {{"capabilities", nlohmann::json::array({{{"capability", "late-block-activate"}, {"state", true}}})}}));
        if (!uri.starts_with("unix:")) {
            TRY_VOID(qmp("start the migration listener of", "migrate-incoming", {{"uri", uri}}));
            return {};
        }
        auto listener = TRY(listen_unix_socket(uri.substr(5), {.backlog = 1, .permissions = 0600}));
        TRY(with_qmp("start the migration listener of", [&](QmpClient& client) -> Result<nlohmann::json> {
            TRY(client.execute_with_fd("getfd", {{"fdname", "corral-migrate-in"}}, listener.get(),
                                       k_qmp_command_timeout));
            return client.execute("migrate-incoming", {{"uri", "tcp:fd:corral-migrate-in"}}, k_qmp_command_timeout);
        }));
        return {};
    }

    Result<void> delete_snapshot(const std::string& tag) override {
        return human("delete snapshot " + tag + " of", "delvm " + tag, k_savevm_timeout);
    }

    Result<RunState> query() override {
        auto status = TRY(qmp("query the status of", "query-status"));
        // "running" is the only state in which the guest executes; every other one
        // (paused, suspended, prelaunch, guest-panicked, ...) means it does not.
        return status.value("status", "") == "running" ? RunState::Running : RunState::Paused;
    }

    /// QEMU's block throttling on every disk (its leaky buckets allow a burst of a tenth of a
    /// second), traffic control on every tap.
    Result<void> set_io_limits(const IoLimits& limits) override {
        auto blocks = TRY(qmp("list the disks of", "query-block"));
        if (blocks.is_array())
            for (const auto& block : blocks) {
                const std::string device = block.value("device", std::string());
                if (!device.starts_with("disk") || !block.contains("inserted"))
                    continue;
                TRY(qmp("set the disk limits of", "block_set_io_throttle",
                        // By the -drive id (the BlockBackend's name): the qdev id names the PCI
                        // proxy, which has no block backend of its own.
                        {{"device", device},
                         {"bps", limits.disk_bytes_per_s},
                         {"bps_rd", 0},
                         {"bps_wr", 0},
                         {"iops", limits.disk_ops_per_s},
                         {"iops_rd", 0},
                         {"iops_wr", 0}}));
            }
        for (const auto& tap : TRY(read_taps(m_process.run_dir())))
            TRY_VOID(net::set_tap_rate_limit(tap, limits.nic_bytes_per_s));
        return {};
    }

    Result<void> set_balloon_target(uint64_t bytes) override {
        // QMP `balloon` takes the memory the guest should keep (QEMU inflates by the rest).
        TRY(qmp("set the memory balloon of", "balloon", {{"value", bytes}}));
        // QEMU keeps no target it could tell; a file in the run folder outlives a corrald restart.
        write_balloon_target(m_process.run_dir(), bytes);
        return {};
    }

    Result<BalloonInfo> balloon() override {
        auto answer = TRY(qmp("query the memory balloon of", "query-balloon"));
        BalloonInfo info;
        info.actual_bytes = answer.value("actual", uint64_t{0});
        info.target_bytes = read_balloon_target(m_process.run_dir()).value_or(info.actual_bytes);
        // guest-stats: {"stats": {"stat-free-memory": N, ...}, "last-update": T}; -1 (or no
        // last-update yet) while the guest has not reported them.
        auto stats = qmp("read the guest memory statistics of", "qom-get",
                         {{"path", k_balloon_qom_path}, {"property", "guest-stats"}});
        if (stats && stats->value("last-update", int64_t{0}) > 0 && stats->contains("stats")) {
            const auto& values = (*stats)["stats"];
            auto stat = [&](const char* key) -> std::optional<uint64_t> {
                int64_t value = values.value(key, int64_t{-1});
                if (value < 0)
                    return std::nullopt;
                return static_cast<uint64_t>(value);
            };
            info.guest_free_bytes = stat("stat-free-memory");
            info.guest_available_bytes = stat("stat-available-memory");
            info.guest_total_bytes = stat("stat-total-memory");
        }
        return info;
    }

    Result<std::vector<DiskCounters>> counters() override {
        auto stats = TRY(qmp("read the disk counters of", "query-blockstats"));
        std::vector<DiskCounters> result;
        if (!stats.is_array())
            return result;
        for (const auto& entry : stats) {
            std::string device = entry.value("device", "");
            if (device.empty() || !entry.contains("stats"))
                continue;
            const auto& s = entry["stats"];
            DiskCounters counters;
            counters.device = device;
            counters.read_bytes = s.value("rd_bytes", uint64_t{0});
            counters.write_bytes = s.value("wr_bytes", uint64_t{0});
            counters.read_ops = s.value("rd_operations", uint64_t{0});
            counters.write_ops = s.value("wr_operations", uint64_t{0});
            counters.read_time_ns = s.value("rd_total_time_ns", uint64_t{0});
            counters.write_time_ns = s.value("wr_total_time_ns", uint64_t{0});
            result.push_back(counters);
        }
        return result;
    }

    Result<std::string> screenshot() override {
        // QEMU opens no host path: it writes into a file corrald opened, handed over as an fd
        // set (/dev/fdset/N). The file has no name (O_TMPFILE) so nothing is left behind; QEMU
        // gets a write-only descriptor of it (an fd set's access mode must match screendump's).
        UniqueFd file(::open(m_process.run_dir().c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600));
        if (!file.valid()) return fail_errno(fmt::format("cannot create a screenshot file in {}", m_process.run_dir().string()));
        UniqueFd for_qemu(::open(fmt::format("/proc/self/fd/{}", file.get()).c_str(), O_WRONLY | O_CLOEXEC));
        if (!for_qemu.valid()) return fail_errno("cannot reopen the screenshot file write-only");
        auto dumped = with_qmp("take a screenshot of", [&](QmpClient& client) -> Result<nlohmann::json> {
            auto added = TRY(client.execute_with_fd("add-fd", nlohmann::json::object(), for_qemu.get(),
                                                    k_qmp_command_timeout));
            const auto set = added.value("fdset-id", -1);
            auto taken = client.execute(
                "screendump", {{"filename", fmt::format("/dev/fdset/{}", set)}, {"format", "png"}}, k_qmp_command_timeout);
            // The set is QEMU's until removed; gone with the connection's error either way.
            ignore_error(client.execute("remove-fd", {{"fdset-id", set}}, k_qmp_command_timeout),
                         "the screendump's result is the one to report");
            return taken;
        });
        if (!dumped) {
            // QEMU has no console to dump when the VM has no display device.
            if (dumped.error().errno_value() == EIO)
                return fail(fmt::format("cannot take a screenshot: {}", dumped.error().message()), ENOTSUP);
            return fail(dumped.error());
        }
        return read_whole(file.get(), k_max_screenshot_bytes, "the screenshot");
    }

    Result<UniqueFd> connect_vnc() override {
        // QEMU listens nowhere (-vnc none): each viewer is one end of a socket pair whose other
        // end QEMU takes over QMP (getfd + add_client), so QEMU opens no host path.
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0)
            return fail_errno("cannot create a socket pair for a VNC viewer");
        UniqueFd ours(pair[0]);
        UniqueFd theirs(pair[1]);
        TRY(with_qmp("connect a VNC viewer to", [&](QmpClient& client) -> Result<nlohmann::json> {
            TRY(client.execute_with_fd("getfd", {{"fdname", "corral-vnc"}}, theirs.get(), k_qmp_command_timeout));
            return client.execute("add_client", {{"protocol", "vnc"}, {"fdname", "corral-vnc"}, {"skipauth", true}},
                                  k_qmp_command_timeout);
        }));
        return ours;
    }

    fs::path console_socket() const override {
        return m_process.run_dir() / run_files::k_console_socket;
    }
    fs::path console_log() const override { return m_process.run_dir() / run_files::k_console_log; }
    const fs::path& run_dir() const override { return m_process.run_dir(); }

private:
    /// One QMP connection per call: QEMU serves one client at a time, and a daemon restart must
    /// not find the socket held.
    Result<nlohmann::json> qmp(const std::string& what, const std::string& command,
                               const nlohmann::json& arguments = nullptr,
                               std::chrono::milliseconds timeout = k_qmp_command_timeout) {
        return with_qmp(what, [&](QmpClient& client) { return client.execute(command, arguments, timeout); });
    }

    /// Runs `commands` (a callable taking the QmpClient&, returning a Result<json>) on one QMP
    /// connection: a descriptor passed with getfd is named for that connection only.
    template <class Commands>
    Result<nlohmann::json> with_qmp(const std::string& what, Commands commands) {
        std::lock_guard lock(m_qmp_mutex);
        if (m_process.exited())
            return fail(m_process.gone_error(what + " the VM"));
        auto client = QmpClient::connect(m_process.run_dir() / run_files::k_qmp_socket,
                                         k_qmp_connect_timeout);
        if (!client) {
            if (m_process.wait_exit(100ms))
                return fail(m_process.gone_error(what + " the VM"));
            return fail(client.error().with_context(fmt::format("cannot {} the VM", what)));
        }
        Result<nlohmann::json> result = commands(*client);
        if (!result && m_process.wait_exit(100ms))
            return fail(m_process.gone_error(what + " the VM"));
        return result;
    }

    /// A human monitor command (savevm/delvm have no synchronous QMP equivalent in QEMU 7.2):
    /// it reports failure only as text in its answer, so any answer text is an error (EBUSY).
    Result<void> human(const std::string& what, const std::string& command_line,
                       std::chrono::milliseconds timeout) {
        auto answer = TRY(qmp(what, "human-monitor-command", {{"command-line", command_line}}, timeout));
        std::string text = answer.is_string() ? answer.get<std::string>() : std::string();
        while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
        if (!text.empty()) return fail(fmt::format("cannot {} the VM: QEMU says: {}", what, text), EBUSY);
        return {};
    }

    Result<void> control(const std::string& what, const std::string& command) {
        auto result = qmp(what, command);
        if (!result) {
            // QEMU refusing the command (EIO: a QMP error) means the VM's state does not allow it.
            const Error& error = result.error();
            if (error.errno_value() == EIO)
                return fail(error.message(), EBUSY);
            return fail(error);
        }
        return {};
    }

    ShimProcess m_process;
    std::mutex m_qmp_mutex;
    bool m_serving_disks = false;
};

class EmulatedEngine final : public Engine {
public:
    explicit EmulatedEngine(EnginePaths paths) : m_paths(std::move(paths)) {}

    std::string name() const override { return "emulated"; }

    Availability availability() const override {
        fs::path qemu = find_on_path(m_paths.qemu.string());
        if (qemu.empty())
            return {false,
                    fmt::format("{} not found (install qemu-system-x86)", m_paths.qemu.string())};
        auto run = run_capture({qemu.string(), "--version"}, 10s);
        if (!run || run->exit_code != 0)
            return {false, fmt::format("{} --version failed: {}", qemu.string(),
                                       run ? tail_of(run->output) : run.error().describe())};
        std::string version = parse_qemu_version(run->output);
        return {true,
                fmt::format("{} (TCG)", version.empty() ? qemu.filename().string() : version)};
    }

    Result<std::unique_ptr<Instance>> launch(const LaunchSpec& given) override {
        TRY_VOID(validate_launch_spec(given));
        LaunchSpec spec = given;
        if (spec.generation_id.empty())
            spec.generation_id = random_guid();
        fs::path qemu = find_on_path(m_paths.qemu.string());
        if (qemu.empty())
            return fail(
                fmt::format("cannot start {}: QEMU binary {} not found (install qemu-system-x86)",
                            spec.name, m_paths.qemu.string()),
                ENOENT);
        // QEMU's TCG is not a security boundary: a guest that escapes it gets what QEMU has.
        // So QEMU runs as a uid of its own with no capability, no_new_privs and its seccomp
        // sandbox, holding only descriptors corrald opened for it (see vm_user.h).
        auto user = TRY_CONTEXT(choose_vm_user(), fmt::format("cannot start {}", spec.name));
        if (!user.switch_user)
            log_warning("VM {}: {}", spec.name, user.why_not);
        HandedFds fds;
        auto files = TRY_CONTEXT(prepare_files(spec, user, fds),
                                 fmt::format("cannot start {}", spec.name));
        SpawnOptions options;
        options.fds = fds.raw();
        options.switch_user = user.switch_user;
        options.uid = user.uid;
        options.gid = user.gid;
        options.sockets_prepared = true;
        auto process =
            TRY_CONTEXT(ShimProcess::spawn(m_paths.corral_shim, spec.run_dir,
                                           qemu_command_line(spec, qemu, files),
                                           describe_qemu_exit, options),
                        fmt::format("cannot start {}", spec.name));
        auto instance = std::make_unique<EmulatedInstance>(std::move(process));
        write_taps(spec.run_dir, spec.nics);
        TRY_CONTEXT(wait_for_qmp(*instance), fmt::format("cannot start {}", spec.name));
        // QEMU has no NIC limits of its own: the taps get them before the guest sends a frame
        // (and an unlimited VM loses what a crashed corrald may have left on a tap of its name).
        for (const auto& nic : spec.nics)
            if (auto limited = net::set_tap_rate_limit(nic.tap, spec.io_limits.nic_bytes_per_s); !limited) {
                ignore_error(instance->kill(), "the limit's failure is the error to report");
                return fail(limited.error().with_context(fmt::format("cannot start {}", spec.name)));
            }
        if (!spec.migrate_listen.empty()) {
            if (auto listening = instance->listen_for_migration(spec.migrate_listen); !listening) {
                ignore_error(instance->kill(), "the listener's failure is the error to report");
                return fail(listening.error().with_context(fmt::format("cannot start {}", spec.name)));
            }
        }
        if (!spec.copied_disks.empty()) {
            if (auto serving = instance->serve_disks(spec.disks_listen, spec.copied_disks); !serving) {
                ignore_error(instance->kill(), "the disk server's failure is the error to report");
                return fail(serving.error().with_context(fmt::format("cannot start {}", spec.name)));
            }
        }
        return std::unique_ptr<Instance>(std::move(instance));
    }

    Result<std::unique_ptr<Instance>> adopt(const fs::path& run_dir) override {
        auto process = TRY(ShimProcess::attach(run_dir, describe_qemu_exit));
        return std::unique_ptr<Instance>(std::make_unique<EmulatedInstance>(std::move(process)));
    }

private:
    /// Opens what QEMU needs into `fds` and gives the run folder and the kernel copy to the VM's
    /// group. Read-only disks and every backing file are opened O_RDONLY: a base that linked
    /// clones share is never writable through a VM, and needs no permission for any VM's uid.
    static Result<QemuFiles> prepare_files(const LaunchSpec& spec, const VmUser& user,
                                           HandedFds& fds) {
        const fs::path& run = spec.run_dir;
        std::error_code ec;
        fs::create_directories(run, ec);
        if (ec)
            return fail(fmt::format("cannot create run directory {}: {}", run.string(),
                                    ec.message()),
                        ec.value());
        gid_t group = user.switch_user ? user.gid : ::getegid();
        if (user.switch_user) {
            // The VM reads its kernel copy here (its working folder); nobody else lists it.
            if (::chown(run.c_str(), 0, user.gid) != 0 || ::chmod(run.c_str(), 0750) != 0)
                return fail_errno(fmt::format("cannot give {} to the VM's group", run.string()));
        }
        QemuFiles files;
        TRY_VOID(copy_for_vm(spec.kernel, run / files.kernel, group));
        if (!spec.initrd.empty()) {
            files.initrd = "initrd";
            TRY_VOID(copy_for_vm(spec.initrd, run / files.initrd, group));
        }
        files.console_socket =
            fds.add(TRY(listen_vm_socket(run / run_files::k_console_socket)));
        files.qmp_socket = fds.add(TRY(listen_vm_socket(run / run_files::k_qmp_socket)));
        files.console_log = fds.add(TRY(open_for_vm(run / run_files::k_console_log,
                                                    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND)));
        for (size_t i = 0; i < spec.disks.size(); ++i) {
            const DiskSpec& disk = spec.disks[i];
            auto chain = TRY_CONTEXT(image_chain(disk.path, disk.format), fmt::format("disks[{}]", i));
            std::vector<QemuFiles::Layer> layers;
            for (size_t depth = 0; depth < chain.size(); ++depth) {
                QemuFiles::Layer layer{chain[depth].format, {}};
                layer.lazy_refcounts = depth == 0 && !disk.read_only && chain[0].format == "qcow2" &&
                                       chain[0].qcow2_version >= 3;
                layer.fds.push_back(fds.add(TRY_CONTEXT(open_for_vm(chain[depth].path, O_RDONLY),
                                                        fmt::format("disks[{}]", i))));
                if (depth == 0 && !disk.read_only) {
                    auto writable = TRY_CONTEXT(open_for_vm(chain[depth].path, O_RDWR),
                                                fmt::format("disks[{}]", i));
                    TRY_VOID(keep_from_others(writable.get(), chain[depth].path));
                    layer.fds.push_back(fds.add(std::move(writable)));
                }
                layers.push_back(std::move(layer));
            }
            files.disks.push_back(std::move(layers));
        }
        for (size_t i = 0; i < spec.nics.size(); ++i)
            files.taps.push_back(fds.add(TRY_CONTEXT(net::open_tap(spec.nics[i].tap),
                                                     fmt::format("nics[{}]", i))));
        return files;
    }

    /// A disk a VM writes holds its guest's data: no bit for "others", so neither another local
    /// user nor another VM's uid (a member of none of the file's groups) can read it.
    static Result<void> keep_from_others(int fd, const fs::path& path) {
        struct stat info {};
        if (::fstat(fd, &info) != 0)
            return fail_errno(fmt::format("cannot stat {}", path.string()));
        if ((info.st_mode & 0007) != 0 && ::fchmod(fd, info.st_mode & 07770) != 0)
            return fail_errno(fmt::format("cannot make {} private", path.string()));
        return {};
    }

    static std::string tail_of(const std::string& output) {
        size_t end = output.find_last_not_of("\n ");
        if (end == std::string::npos)
            return "no output";
        size_t start = output.rfind('\n', end);
        return output.substr(start == std::string::npos ? 0 : start + 1,
                             end + 1 - (start == std::string::npos ? 0 : start + 1));
    }

    /// QEMU is up when it answers QMP; it exits first when it rejects its arguments or cannot
    /// load the kernel.
    static Result<void> wait_for_qmp(EmulatedInstance& instance) {
        auto deadline = std::chrono::steady_clock::now() + k_start_timeout;
        for (;;) {
            if (instance.exited()) {
                auto info = TRY(instance.exit_info());
                return fail(fmt::format("QEMU ended right after start: {}", info.reason), ECHILD);
            }
            auto state = instance.query();
            if (state)
                return {};
            if (std::chrono::steady_clock::now() > deadline) {
                ignore_error(instance.kill(), "the start's timeout is the error to report");
                return fail(
                    fmt::format(
                        "QEMU did not answer on its QMP socket within {} s: {}",
                        std::chrono::duration_cast<std::chrono::seconds>(k_start_timeout).count(),
                        state.error().describe()),
                    ETIMEDOUT);
            }
            std::this_thread::sleep_for(50ms);
        }
    }

    EnginePaths m_paths;
};

}  // namespace

std::vector<std::string> qemu_command_line(const LaunchSpec& spec, const fs::path& qemu,
                                           const QemuFiles& files) {
    std::vector<std::string> args = {
        qemu.string(),
        "-sandbox",
        k_qemu_sandbox,
        "-name",
        // Thread names "CPU N/TCG": corrald finds the vCPU threads by them (pinning, run delay).
        escape(spec.name) + ",debug-threads=on",
        "-accel",
        "tcg,thread=multi",
        "-M",
        "pc",
        "-cpu",
        "max",
        "-smp",
        std::to_string(spec.vcpus),
        "-m",
        fmt::format("{}M", spec.memory_mib),
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-kernel",
        files.kernel,
    };
    if (!files.initrd.empty()) {
        args.push_back("-initrd");
        args.push_back(files.initrd);
    }
    if (!spec.migrate_listen.empty()) {
        // Waits, paused, for migrate-incoming (sent once QMP answers) and then the stream.
        args.push_back("-incoming");
        args.push_back("defer");
        // Stays paused once the stream is loaded, until resume() (cont): the source decides
        // that the guest runs here (it may still resume it there if the switch fails).
        args.push_back("-S");
    }
    if (!spec.restore_tag.empty()) {
        // The disks go back to the snapshot and the VM continues from its saved state.
        args.push_back("-loadvm");
        args.push_back(spec.restore_tag);
    }
    if (spec.start_paused)
        args.push_back("-S");
    // The RTC follows the host's clock, also while the VM is stopped or saved: read after a
    // restore it says the host's time now, not the snapshot's (QEMU's default, spelled out
    // because docs/api.md "Clones from a snapshot" builds on it).
    args.push_back("-rtc");
    args.push_back("base=utc,clock=host");
    // Every file descriptor QEMU opens by name goes through an fd set: /dev/fdset/N.
    int next_set = 0;
    auto fd_set = [&](const std::vector<int>& fds) {
        int set = next_set++;
        for (int fd : fds) {
            args.push_back("-add-fd");
            args.push_back(fmt::format("fd={},set={}", fd, set));
        }
        return fmt::format("/dev/fdset/{}", set);
    };
    args.push_back("-append");
    args.push_back(spec.cmdline);
    std::string console_log = fd_set({files.console_log});
    args.push_back("-chardev");
    // logappend=on: QEMU keeps the log's O_APPEND, so that corrald can rotate it by truncation
    // (engine/console_log.h).
    args.push_back(fmt::format("socket,id=con,fd={},server=on,wait=off,logfile={},logappend=on",
                               files.console_socket, console_log));
    args.push_back("-serial");
    args.push_back("chardev:con");
    args.push_back("-chardev");
    args.push_back(fmt::format("socket,id=qmp,fd={},server=on,wait=off", files.qmp_socket));
    args.push_back("-mon");
    args.push_back("chardev=qmp,mode=control");
    if (spec.display_width != 0) {
        // -vga none: the default VGA would be the primary display and keep the screen in text
        // mode; virtio-gpu is what the guest's virtio_gpu (and its fbcon) drives.
        for (const char* arg : {"-vga", "none", "-device"}) args.push_back(arg);
        args.push_back(fmt::format("virtio-gpu-pci,xres={},yres={}", spec.display_width, spec.display_height));
        for (const char* arg : {"-device", "virtio-keyboard-pci", "-device", "virtio-tablet-pci"}) args.push_back(arg);
        // VNC without a listener: QEMU opens no host path, and corrald hands it each viewer's
        // connected socket over QMP (connect_vnc()). force-shared: a viewer asking for exclusive
        // access must not disconnect the others.
        args.push_back("-vnc");
        args.push_back("none,share=force-shared");
    }
    args.push_back("-object");
    args.push_back("rng-random,id=rng0,filename=/dev/urandom");
    args.push_back("-device");
    args.push_back("virtio-rng-pci,rng=rng0");
    if (!spec.generation_id.empty()) {
        // Loading a snapshot with another GUID than it was saved with makes QEMU write the new
        // one into guest memory and raise the ACPI notification Linux's vmgenid driver reseeds
        // its RNG on (QEMU hw/acpi/vmgenid.c, vmgenid_post_load).
        args.push_back("-device");
        args.push_back("vmgenid,guid=" + spec.generation_id);
    }
    for (size_t i = 0; i < spec.disks.size(); ++i) {
        const DiskSpec& disk = spec.disks[i];
        // The backing chain is given explicitly (backing.file.filename...): QEMU would
        // otherwise open the backing files by the names in the qcow2 headers.
        std::string drive = fmt::format("if=none,id=disk{}", i);
        std::string prefix;
        for (const auto& layer : files.disks.at(i)) {
            std::string set = fd_set(layer.fds);
            if (prefix.empty())
                drive += fmt::format(",file={},format={}{}", set, layer.format,
                                     layer.lazy_refcounts ? ",lazy-refcounts=on" : "");
            else
                drive += fmt::format(",{}driver={},{}file.filename={}", prefix, layer.format,
                                     prefix, set);
            prefix += "backing.";
        }
        if (disk.read_only)
            drive += ",readonly=on";
        else
            // The disk's file keeps its read-write descriptor when QEMU lets the disk go (a
            // completed migration inactivates it). -drive's default, auto-read-only, swaps it
            // for a read-only one from the fd set, and the write locks stay with the first:
            // the fd set's own copy keeps it open, so neither the destination's `cont` nor
            // this QEMU's own (a switch that failed) could take the disk (docs/migration.md).
            drive += ",file.auto-read-only=off";
        if (spec.io_limits.disk_bytes_per_s)
            drive += fmt::format(",throttling.bps-total={}", spec.io_limits.disk_bytes_per_s);
        if (spec.io_limits.disk_ops_per_s)
            drive += fmt::format(",throttling.iops-total={}", spec.io_limits.disk_ops_per_s);
        args.push_back("-drive");
        args.push_back(drive);
        std::string device = fmt::format("virtio-blk-pci,drive=disk{},id=vd{}", i, i);
        if (!disk.serial.empty())
            device += ",serial=" + escape(disk.serial);
        args.push_back("-device");
        args.push_back(device);
    }
    for (size_t i = 0; i < spec.nics.size(); ++i) {
        const NicSpec& nic = spec.nics[i];
        args.push_back("-netdev");
        args.push_back(fmt::format("tap,id=net{},fd={}", i, files.taps.at(i)));
        std::string device = fmt::format("virtio-net-pci,netdev=net{},id=nic{}", i, i);
        if (!nic.mac.empty())
            device += ",mac=" + nic.mac;
        args.push_back("-device");
        args.push_back(device);
    }
    // The memory balloon (docs/api.md "Memory balloon"): free page reporting gives the pages
    // the guest frees back to the host; deflate-on-oom lets a guest short of memory take
    // pages back from the balloon rather than kill its processes. Last, so that the disks and
    // NICs keep the PCI slots they had before it existed (snapshots name devices by slot).
    args.push_back("-device");
    args.push_back(
        fmt::format("virtio-balloon-pci,id=balloon0,free-page-reporting=on,deflate-on-oom=on,"
                    "guest-stats-polling-interval={}",
                    k_balloon_stats_interval_s));
    return args;
}

std::string parse_qemu_version(const std::string& version_output) {
    static const std::regex k_version(R"(QEMU emulator version ([0-9][0-9.]*))");
    std::smatch match;
    if (!std::regex_search(version_output, match, k_version))
        return {};
    return fmt::format("qemu-system-x86_64 {}", match[1].str());
}

std::unique_ptr<Engine> make_emulated_engine(EnginePaths paths) {
    return std::make_unique<EmulatedEngine>(std::move(paths));
}

}  // namespace corral::engine
