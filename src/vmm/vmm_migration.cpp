// Live migration between two corral-vmm processes: Vmm::migrate() (the source, on the VMM
// thread, from a control request) and receive_migration() (the destination, from
// --migrate-listen). The stream is in migration/wire.h; docs/migration.md tells the story.

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <thread>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "vmm/devices/virtio/block/block_device.h"
#include "vmm/devices/virtio/pci_transport.h"
#include "vmm/kvm/vcpu_state.h"
#include "vmm/memory/page_scan.h"
#include "vmm/migration/endpoint.h"
#include "vmm/migration/wire.h"
#include "vmm/pci_setup.h"
#include "vmm/snapshot/snapshot_file.h"
#include "vmm/vmm.h"

namespace corral::vmm {
namespace {

using Clock = std::chrono::steady_clock;
using migration::k_page_size;

/// How long one side waits for the other to take or send the next bytes before it gives up.
constexpr std::chrono::seconds k_io_timeout{30};

int64_t milliseconds_since(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

/// Sends guest pages in PAGE records and counts what went. While the guest runs, the stream can
/// be held to a rate (max_bandwidth_bytes, as QEMU's max-bandwidth: a migration need not take the
/// whole link from the host's other traffic) and to the migration's deadline, which a slow or
/// throttled link could otherwise overrun by a whole round.
class PageSender {
public:
    explicit PageSender(int fd) : m_fd(fd) {}

    /// Holds what flush() sends from now on to `bytes_per_s` (0: no limit) and fails it once
    /// `deadline` has passed, with `overdue()` as its error.
    void pace(uint64_t bytes_per_s, Clock::time_point deadline, std::function<Error()> overdue) {
        m_rate = bytes_per_s;
        m_paced_since = Clock::now();
        m_paced_bytes = 0;
        m_deadline = deadline;
        m_overdue = std::move(overdue);
    }
    /// The guest is paused: what is left goes at once, whatever the limit and the deadline.
    void stop_pacing() { m_overdue = nullptr; }

    /// Queues the page at `address` (`host` its bytes); zero pages go as their address alone,
    /// or not at all when `skip_zero` (the destination's memory starts zeroed).
    Result<void> page(uint64_t address, const uint8_t* host, bool skip_zero) {
        bool zero = page_is_zero(host);
        if (zero && skip_zero)
            return {};
        m_batch.add(address, zero ? nullptr : host);
        ++(zero ? zero_pages : pages);
        if (m_batch.full())
            TRY_VOID(flush());
        return {};
    }
    Result<void> flush() {
        if (m_batch.empty())
            return {};
        auto record = m_batch.take();
        TRY_VOID(migration::send_all(m_fd, record));
        bytes += record.size();
        if (!m_overdue)
            return {};
        m_paced_bytes += record.size();
        if (m_rate) {
            // Sleeps until the bytes sent so far are due at the rate (a record is at most
            // k_max_pages_per_record pages, so the stream never runs ahead by more than one).
            auto due = m_paced_since + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                                           static_cast<double>(m_paced_bytes) / static_cast<double>(m_rate)));
            std::this_thread::sleep_until(std::min(due, m_deadline));
        }
        if (Clock::now() >= m_deadline)
            return fail(m_overdue());
        return {};
    }

    uint64_t pages = 0;
    uint64_t zero_pages = 0;
    uint64_t bytes = 0;

private:
    int m_fd;
    migration::PageBatch m_batch;
    uint64_t m_rate = 0;
    Clock::time_point m_paced_since;
    uint64_t m_paced_bytes = 0;
    Clock::time_point m_deadline = Clock::time_point::max();
    std::function<Error()> m_overdue;
};

}  // namespace

Result<void> Vmm::set_dirty_logging(bool on) {
    uint32_t slot = 0;
    // The same slots, addresses and sizes as map_guest_memory(); only the flag changes, which
    // KVM allows on a live slot (api.rst, KVM_SET_USER_MEMORY_REGION).
    for (const auto& region : m_memory.regions())
        TRY_VOID(m_vm.set_user_memory_region(slot++, region.guest_address, region.size, region.host,
                                             on ? KVM_MEM_LOG_DIRTY_PAGES : 0));
    return {};
}

Result<nlohmann::json> Vmm::migrate(const ControlRequest& request) {
    auto started = Clock::now();
    auto deadline = started + std::chrono::seconds(request.timeout_s);
    auto endpoint = TRY(migration::parse_endpoint(request.migrate_to, "migrate's \"to\""));
    // As for snapshots: the display devices have no saved form yet (see Vmm::snapshot()).
    if (m_config.has_display())
        return fail(ErrorKind::Invalid,
                    "migrating VMs with a display is not supported yet (this VM has --display); "
                    "snapshots of VMs with a display are not supported yet either");
    if (m_paused)
        return fail(ErrorKind::Busy, "the VM is paused; resume it before migrating it");
    auto migrated = [&]() -> Result<nlohmann::json> {
        auto connection = TRY(migration::connect_endpoint(endpoint, k_io_timeout));
        int fd = connection.get();

        // The destination checks, before any page moves, that it can give the guest its CPU.
        migration::Hello hello{m_config, {}};
        for (const auto& vcpu : m_vcpus)
            hello.cpuids.push_back(vcpu->vcpu().given_cpuid());
        TRY_VOID(migration::send_all(fd, migration::encode_hello(hello)));
        auto accepted = TRY(migration::receive_record(fd, "destination"));
        TRY_VOID(migration::decode_record(accepted, migration::k_accept, "destination", [](auto&) {}));

        // The guest's own writes are in KVM's dirty log; the devices' (virtio buffers and used rings,
        // written by this process) in the memory's device write log. Whatever fails from here on,
        // both go off and the guest goes on here untracked.
        m_memory.start_device_write_log();
        auto dirty_logging = set_dirty_logging(true);
        struct LoggingOff {
            std::function<void()> off;
            ~LoggingOff() {
                if (off)
                    off();
            }
        } logging_off{[this] {
            m_memory.stop_device_write_log();
            ignore_error(set_dirty_logging(false), "the slots stay as they are; logging costs only speed");
        }};
        TRY_VOID(dirty_logging);

        PageSender sender(fd);
        sender.pace(request.max_bandwidth_bytes, deadline, [&] {
            return Error(ErrorKind::Failed,
                         fmt::format("the migration did not converge within timeout_s {} (the time ran out while "
                                     "{} MiB were sent{}); cancelled",
                                     request.timeout_s, sender.bytes >> 20,
                                     request.max_bandwidth_bytes
                                         ? fmt::format(" at the limit of {} MiB/s", request.max_bandwidth_bytes >> 20)
                                         : std::string()));
        });
        // Round 0: every page that is not zero (pages the guest never touched are not even read).
        // Pages written meanwhile are in the dirty log.
        auto round_started = Clock::now();
        TouchedPages touched(m_memory);
        for (const auto& region : m_memory.regions())
            for (uint64_t offset = 0; offset + k_page_size <= region.size; offset += k_page_size)
                if (touched.maybe_data(region, offset))
                    TRY_VOID(sender.page(region.guest_address + offset, region.host + offset, /*skip_zero=*/true));
        TRY_VOID(sender.flush());
        uint64_t rounds = 1;
        uint64_t round_bytes = sender.bytes;
        int64_t round_ms = std::max<int64_t>(1, milliseconds_since(round_started));

        // The guest addresses of the pages the dirty log names (and clears) in every slot.
        auto collect_dirty = [&]() -> Result<std::vector<uint64_t>> {
            std::vector<uint64_t> addresses;
            uint32_t slot = 0;
            for (const auto& region : m_memory.regions()) {
                uint64_t pages = region.size / k_page_size;
                auto bitmap = TRY(m_vm.dirty_log(slot++, pages));
                for (uint64_t word = 0; word < bitmap.size(); ++word)
                    for (uint64_t bits = bitmap[word]; bits; bits &= bits - 1) {
                        uint64_t page = word * 64 + static_cast<uint64_t>(__builtin_ctzll(bits));
                        if (page < pages)
                            addresses.push_back(region.guest_address + page * k_page_size);
                    }
            }
            auto device_writes = m_memory.take_device_writes();
            if (!device_writes.empty()) {
                addresses.insert(addresses.end(), device_writes.begin(), device_writes.end());
                std::sort(addresses.begin(), addresses.end());
                addresses.erase(std::unique(addresses.begin(), addresses.end()), addresses.end());
            }
            return addresses;
        };
        // Sends pages by guest address (zero ones as such: they may have held data before).
        auto send_pages = [&](const std::vector<uint64_t>& addresses) -> Result<void> {
            for (uint64_t address : addresses) {
                // Addresses come from KVM's log of our own slots: always whole pages of RAM.
                uint8_t* host = m_memory.host_pointer(address, k_page_size);
                if (!host)
                    return fail(fmt::format("KVM logged 0x{:x} dirty, which is not guest RAM", address));
                TRY_VOID(sender.page(address, host, /*skip_zero=*/false));
            }
            return sender.flush();
        };

        // Rounds of the pages dirtied meanwhile, until what is left fits in the downtime at the
        // link's measured rate: those pages then go with the guest paused.
        double link_rate = static_cast<double>(round_bytes) * 1000.0 / static_cast<double>(round_ms);  // bytes/s
        double dirty_rate = 0;  // bytes/s the guest dirtied during the last round
        std::vector<uint64_t> dirty;
        for (;;) {
            dirty = TRY(collect_dirty());
            uint64_t dirty_bytes = dirty.size() * k_page_size;
            dirty_rate = static_cast<double>(dirty_bytes) * 1000.0 / static_cast<double>(round_ms);
            double expected_ms = static_cast<double>(dirty_bytes) * 1000.0 / std::max(link_rate, 1.0);
            if (expected_ms <= request.downtime_ms)
                break;
            if (Clock::now() >= deadline)
                return fail(ErrorKind::Failed,
                            fmt::format("the migration did not converge within timeout_s {} (the guest dirties about "
                                        "{} MiB/s, the link carries about {} MiB/s, {} ms of pages were left for a "
                                        "downtime_ms of {}); cancelled",
                                        request.timeout_s, static_cast<uint64_t>(dirty_rate) >> 20,
                                        static_cast<uint64_t>(link_rate) >> 20, static_cast<uint64_t>(expected_ms),
                                        request.downtime_ms));
            round_started = Clock::now();
            uint64_t bytes_before = sender.bytes;
            TRY_VOID(send_pages(dirty));
            ++rounds;
            round_bytes = sender.bytes - bytes_before;
            round_ms = std::max<int64_t>(1, milliseconds_since(round_started));
            // A small round measures latency more than bandwidth: keep the last good figure.
            if (round_bytes >= (4u << 20))
                link_rate = static_cast<double>(round_bytes) * 1000.0 / static_cast<double>(round_ms);
        }

        // The switch: pause, send what is left and the state, hand over.
        auto paused_at = Clock::now();
        sender.stop_pacing();
        if (!pause_vcpus()) {
            resume_vcpus();
            return fail(ErrorKind::Busy, "the vCPUs did not stop within 5 s; the VM keeps running here");
        }
        m_paused = true;
        std::vector<std::shared_ptr<virtio::VirtioPciTransport>> transports;
        if (m_pci)
            transports = m_pci->transports;
        auto final_pass = [&]() -> Result<void> {
            for (auto& vcpu : m_vcpus)
                TRY_VOID(vcpu->vcpu().complete_pending_io());
            for (auto& transport : transports) {
                transport->quiesce();
                // The destination opens the disks once it has the state; this process must
                // not rewrite their metadata after that (its exit stores no bitmap).
                if (auto* block = dynamic_cast<virtio::BlockDevice*>(&transport->device()))
                    block->hand_over_bitmaps();
            }
            // What the last look found, and what the guest wrote since.
            auto more = TRY(collect_dirty());
            dirty.insert(dirty.end(), more.begin(), more.end());
            std::sort(dirty.begin(), dirty.end());
            dirty.erase(std::unique(dirty.begin(), dirty.end()), dirty.end());
            TRY_VOID(send_pages(dirty));
            auto state = TRY(capture_state());
            TRY_VOID(
                migration::send_all(fd, migration::encode_record(migration::k_state, [&](snapshot::StateWriter& w) {
                                        w.fixed_bytes(snapshot::encode_state_file(state));
                                    })));
            auto loaded = TRY(migration::receive_record(fd, "destination"));
            TRY_VOID(migration::decode_record(loaded, migration::k_loaded, "destination", [](auto&) {}));
            return migration::send_all(fd, migration::encode_empty_record(migration::k_go));
        };
        if (auto done = final_pass(); !done) {
            // Before the switch: the VM goes on here as if nothing happened.
            for (auto& transport : transports)
                if (auto resumed = transport->resume(); !resumed)
                    log_error("after the failed migration: {}", resumed.error().describe());
            resume_vcpus();
            return fail(done.error());
        }
        auto downtime_ms = milliseconds_since(paused_at);
        auto total_ms = milliseconds_since(started);
        logging_off.off = nullptr;  // the VM is gone from here
        log_info("migrated to {}: {} rounds, {} MiB sent, {} ms in all, {} ms paused", endpoint.text, rounds,
                 sender.bytes >> 20, total_ms, downtime_ms);
        m_exits.report({VmExitReason::Stopped, fmt::format("migrated to {}", endpoint.text)});
        return nlohmann::json{{"to", endpoint.text},
                              {"state", "migrated"},
                              {"rounds", rounds},
                              {"bytes_sent", sender.bytes},
                              {"pages_sent", sender.pages},
                              {"zero_pages_sent", sender.zero_pages},
                              {"final_pages", dirty.size()},
                              {"dirty_rate_bytes_per_s", static_cast<uint64_t>(dirty_rate)},
                              {"link_rate_bytes_per_s", static_cast<uint64_t>(link_rate)},
                              {"max_bandwidth_bytes", request.max_bandwidth_bytes},
                              {"total_ms", total_ms},
                              {"downtime_ms", downtime_ms},
                              {"downtime_limit_ms", request.downtime_ms}};
    }();
    // Any failure came before the switch: the guest never stopped, or ran again at once.
    if (!migrated)
        return fail(migrated.error().with_context(fmt::format("migrating to {}; the VM runs on here", endpoint.text)));
    return migrated;
}

Result<std::unique_ptr<Vmm>> receive_migration(int connection, const ConfigAdjuster& adjust) {
    // Every error goes back to the source (if it still listens) so its answer names the reason.
    auto refuse = [&](const Error& error) {
        ignore_error(migration::send_all(connection, migration::encode_failure(error.describe())),
                     "the source may be gone; the error is ours to report anyway");
        return fail(error.with_context("incoming migration"));
    };
    auto hello_record = migration::receive_record(connection, "source");
    if (!hello_record)
        return refuse(hello_record.error());
    auto hello = migration::decode_hello(*hello_record);
    if (!hello)
        return refuse(hello.error());
    if (adjust)
        if (auto adjusted = adjust(hello->config); !adjusted)
            return refuse(adjusted.error());
    auto incoming = prepare_incoming_vm(hello->config, hello->cpuids);
    if (!incoming)
        return refuse(incoming.error());
    if (auto sent = migration::send_all(connection, migration::encode_empty_record(migration::k_accept)); !sent)
        return fail(sent.error().with_context("incoming migration"));
    log_info("incoming migration: receiving a VM of {} MiB and {} vCPUs", hello->config.memory_bytes >> 20,
             hello->config.cpus);

    migration::PageCounts counts;
    std::optional<snapshot::SnapshotState> state;
    migration::Record record;  // one buffer for every record
    while (!state) {
        if (auto received = migration::receive_record_into(connection, "source", record); !received)
            return refuse(received.error());
        if (record.tag == migration::k_pages) {
            auto applied = migration::apply_page_record(record, incoming->memory);
            if (!applied)
                return refuse(applied.error());
            counts.pages += applied->pages;
            counts.zero_pages += applied->zero_pages;
            continue;
        }
        std::vector<uint8_t> state_file;
        auto decoded = migration::decode_record(record, migration::k_state, "source", [&](snapshot::StateReader& r) {
            state_file.resize(r.remaining());
            r.fixed_bytes(state_file);
        });
        if (!decoded)
            return refuse(decoded.error());
        auto parsed = snapshot::decode_state_file(state_file);
        if (!parsed)
            return refuse(parsed.error());
        // The state's configuration is the source's; the command line's adjustments apply again.
        if (adjust)
            if (auto adjusted = adjust(parsed->config); !adjusted)
                return refuse(adjusted.error());
        if (parsed->memory_bytes != incoming->memory.ram_size() || parsed->vcpus.size() != hello->cpuids.size())
            return refuse(Error(ErrorKind::Invalid, "the state's memory size or vCPU count differs from the HELO's"));
        state = std::move(*parsed);
    }
    // The devices open their disks only now: the source has paused and flushed them.
    auto vmm = build_vmm(state->config, std::move(incoming->system), std::move(incoming->vm),
                         std::move(incoming->memory), std::nullopt);
    if (!vmm)
        return refuse(vmm.error());
    if (auto restored = (*vmm)->restore_state(*state); !restored)
        return refuse(restored.error());
    if (auto sent = migration::send_all(connection, migration::encode_empty_record(migration::k_loaded)); !sent)
        return fail(sent.error().with_context("incoming migration"));
    // The source runs the guest until it reads LOAD and sends GO__; without GO__ it may run on
    // there, so this half is discarded.
    auto go = migration::receive_record(connection, "source");
    if (!go)
        return fail(go.error().with_context("incoming migration, before the switch; discarding the VM"));
    TRY_CONTEXT(migration::decode_record(*go, migration::k_go, "source", [](auto&) {}),
                "incoming migration, before the switch; discarding the VM");
    log_info("incoming migration: {} pages and {} zero pages received; the VM runs here", counts.pages,
             counts.zero_pages);
    return std::move(*vmm);
}

Result<std::unique_ptr<Vmm>> receive_migration_at(const std::string& address, const ConfigAdjuster& adjust) {
    auto endpoint = TRY(migration::parse_endpoint(address, "--migrate-listen"));
    auto listener = TRY(migration::listen_endpoint(endpoint));
    // The socket file goes with the listener: one migration per destination process.
    struct RemoveSocket {
        std::string path;
        ~RemoveSocket() {
            if (!path.empty())
                ::unlink(path.c_str());
        }
    } socket_file{endpoint.kind == migration::Endpoint::Kind::Unix ? endpoint.path : std::string()};
    log_info("waiting for a live migration on {}", endpoint.text);
    auto connection = TRY(migration::accept_one(listener.get(), k_io_timeout));
    listener.reset();
    return receive_migration(connection.get(), adjust);
}

}  // namespace corral::vmm
