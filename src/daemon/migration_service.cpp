#include "daemon/migration_service.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "base/log.h"
#include "base/private_file.h"
#include "base/unix_socket.h"
#include "cli/api_client.h"
#include "daemon/inventory/vm_limits_json.h"
#include "daemon/migration_disk_relay.h"
#include "storage/pool/directory_pool.h"

namespace corral::daemon {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

/// The source instance's end of the stream, in its run folder (only root can reach it).
constexpr const char* k_outgoing_socket = "migrate-out.sock";
/// The source instance's end of disk N's copy (NBD), beside it.
std::string disk_copy_socket(size_t disk) {
    return fmt::format("migrate-disk{}.sock", disk);
}
/// How long the source instance has to connect once the migration was asked for.
constexpr int k_connect_wait_ms = 30000;
/// The relay reads this much at a time, and waits while more than k_relay_window bytes are
/// queued for the TLS connection (its pace is the migration's: QEMU measures the link by it).
constexpr size_t k_relay_chunk = 256 * 1024;
constexpr size_t k_relay_window = 8 * 1024 * 1024;
/// How long the destination may take no data before the migration fails (the instance's
/// stream is cut: its migration fails and the VM runs on here).
constexpr auto k_stall_wait = std::chrono::seconds(30);
/// How long the end of the stream may take to go out once the instance sent it.
constexpr auto k_drain_wait = std::chrono::seconds(60);
/// How long the destination may take to run the guest after the stream ended.
constexpr auto k_finish_wait = std::chrono::seconds(60);
/// Any one call to the destination's API; finish waits up to k_finish_wait there.
constexpr auto k_answer_wait = k_finish_wait + std::chrono::seconds(30);
/// A finish that got no answer: how long the source goes on asking the destination what came
/// of it, and how long each question may wait.
constexpr auto k_settle_wait = std::chrono::seconds(15);
constexpr auto k_settle_answer_wait = std::chrono::seconds(5);

std::string random_id() {
    unsigned char bytes[16] = {};
    FILE* random = std::fopen("/dev/urandom", "rbe");
    size_t got = random ? std::fread(bytes, 1, sizeof bytes, random) : 0;
    if (random)
        std::fclose(random);
    if (got != sizeof bytes)
        throw std::runtime_error("cannot read /dev/urandom");
    std::string id;
    for (unsigned char byte : bytes)
        id += fmt::format("{:02x}", byte);
    return id;
}

std::string message_of(const cli::ApiError& error) {
    return error.message;
}

/// The definition the destination gets (the body of POST /vms, docs/api.md "VMs"): what makes
/// the VM, not where it is in its life.
nlohmann::json definition_of(const inventory::VmRecord& vm) {
    nlohmann::json disks = nlohmann::json::array();
    for (const auto& disk : vm.disks)
        disks.push_back({{"pool", disk.pool}, {"volume", disk.volume}, {"readonly", disk.readonly}});
    nlohmann::json nics = nlohmann::json::array();
    for (const auto& nic : vm.nics) {
        nlohmann::json item = {{"mac", nic.mac}};
        if (!nic.network.empty()) {
            item["network"] = nic.network;
            if (!nic.ipv4.empty())
                item["ipv4"] = nic.ipv4;
            if (!nic.groups.empty())
                item["groups"] = nic.groups;
        } else if (!nic.bridge.empty()) {
            item["bridge"] = nic.bridge;
        } else {
            item["tap"] = nic.tap;
        }
        nics.push_back(item);
    }
    nlohmann::json body = {{"name", vm.name},
                           {"engine", vm.engine},
                           {"vcpus", vm.vcpus},
                           {"memory_mib", vm.memory_mib},
                           {"disks", disks},
                           {"nics", nics},
                           {"restart_policy", vm.restart_policy},
                           {"cmdline", vm.cmdline}};
    if (!vm.image.empty())
        body["image"] = vm.image;
    if (vm.display_width != 0)
        body["display"] = {{"width", vm.display_width}, {"height", vm.display_height}};
    if (vm.limits != inventory::VmLimits{})
        body["limits"] = inventory::vm_limits_json(vm.limits);
    return body;
}

/// Relays the source instance's stream (the unix socket it connects to) into the WebSocket to
/// the destination. A WebSocket that ends first cuts the instance's side, so that its migration
/// fails and the VM runs on here (never "completed" into nowhere). Every wait is bounded: the
/// instance connecting, the destination taking data, the end of the stream going out.
class Relay {
public:
    Relay(UniqueFd listener, std::unique_ptr<cli::WebSocketSession> session, std::string vm)
        : m_vm(std::move(vm)), m_listener(std::move(listener)), m_session(std::move(session)) {
        m_writer = std::thread([this] {
            auto ran = m_session->run([](std::string_view, bool) {});
            if (!ran)
                set_error(ran.error().message);
            m_session_done = true;
            cut_instance();
            m_done.notify_all();
        });
        m_reader = std::thread([this] {
            pump();
            m_reader_done = true;
            m_done.notify_all();
        });
    }
    ~Relay() { stop(); }

    /// Waits until the stream ended and all of it went out, at most `limit` (then the connection
    /// is cut). True when all of it went out.
    bool drain(std::chrono::seconds limit) {
        {
            std::unique_lock lock(m_mutex);
            if (!m_done.wait_for(lock, limit, [this] { return m_reader_done && m_session_done; })) {
                lock.unlock();
                set_error(
                    fmt::format("the end of the stream did not go out within {} s (the destination stopped "
                                "reading)",
                                limit.count()));
                cut();
            }
        }
        join();
        return m_complete && error().empty();
    }
    /// Cuts both sides (a failed migration).
    void stop() {
        cut();
        join();
    }
    std::string error() {
        std::lock_guard lock(m_mutex);
        return m_error;
    }
    /// What entered the relay from the instance (all of it went on unless it was cut).
    const StreamTally& tally() const { return m_in; }

private:
    void set_error(const std::string& why) {
        std::lock_guard lock(m_mutex);
        if (m_error.empty())
            m_error = why;
    }
    void cut_instance() {
        int fd = m_stream.load();
        if (fd >= 0)
            ::shutdown(fd, SHUT_RDWR);
        // A reader still waiting for the instance to connect wakes up too.
        ::shutdown(m_listener.get(), SHUT_RDWR);
    }
    void cut() {
        m_stopping = true;
        cut_instance();
        m_session->abort();
    }
    void join() {
        if (m_reader.joinable())
            m_reader.join();
        if (m_writer.joinable())
            m_writer.join();
    }
    void pump() {
        pollfd waiting{m_listener.get(), POLLIN, 0};
        int ready = ::poll(&waiting, 1, k_connect_wait_ms);
        if (ready <= 0 || m_stopping || m_session_done) {
            if (ready == 0)
                set_error(
                    fmt::format("the instance did not connect to its stream within {} s", k_connect_wait_ms / 1000));
            m_session->close();
            return;
        }
        UniqueFd stream(::accept4(m_listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!stream.valid()) {
            m_session->close();
            return;
        }
        m_stream = stream.get();
        if (m_session_done || m_stopping)
            ::shutdown(stream.get(), SHUT_RDWR);
        std::string buffer(k_relay_chunk, '\0');
        for (;;) {
            ssize_t got = ::read(stream.get(), buffer.data(), buffer.size());
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0)
                break;
            const std::string_view data(buffer.data(), static_cast<size_t>(got));
            m_in.add(data);
            // The destination paces the stream; one that takes nothing for long is gone.
            const auto stalled = std::chrono::steady_clock::now() + k_stall_wait;
            while (m_session->queued_bytes() > k_relay_window && !m_session_done && !m_stopping) {
                if (std::chrono::steady_clock::now() > stalled) {
                    set_error(fmt::format("the destination took no data for {} s", k_stall_wait.count()));
                    m_stream = -1;
                    cut();
                    return;
                }
                std::this_thread::sleep_for(1ms);
            }
            if (m_session_done || m_stopping)
                break;
            m_session->send(std::string(data));
        }
        m_complete = !m_session_done && !m_stopping;
        if (!m_complete && !m_stopping && error().empty())
            set_error("the destination closed the stream before its end");
        m_stream = -1;
        log_info("{}: stream relayed out: {} ({})", m_vm, m_in.describe(), m_complete ? "all of it" : "cut");
        m_session->close();
    }

    std::string m_vm;
    UniqueFd m_listener;
    std::unique_ptr<cli::WebSocketSession> m_session;
    StreamTally m_in;
    std::atomic<int> m_stream{-1};
    std::atomic<bool> m_session_done{false};
    std::atomic<bool> m_reader_done{false};
    std::atomic<bool> m_stopping{false};
    std::atomic<bool> m_complete{false};
    std::mutex m_mutex;
    std::condition_variable m_done;
    std::string m_error;
    std::thread m_writer;
    std::thread m_reader;
};

}  // namespace

void StreamTally::add(std::string_view data) {
    bytes += data.size();
    for (unsigned char byte : data)
        checksum = (checksum ^ byte) * 1099511628211ull;  // FNV-1a: any loss or reorder shows
}

std::string StreamTally::describe() const {
    return fmt::format("{} bytes, FNV-1a {:016x}", bytes, checksum);
}

MigrationService::MigrationService(VmManager& vms, StorageService& storage, TaskManager& tasks, std::string hostname,
                                   fs::path scratch_dir)
    : m_vms(vms),
      m_storage(storage),
      m_tasks(tasks),
      m_hostname(std::move(hostname)),
      m_scratch_dir(std::move(scratch_dir)) {
    m_reaper = std::thread([this] { reap(); });
}

MigrationService::~MigrationService() {
    {
        std::lock_guard lock(m_mutex);
        m_stopping = true;
    }
    m_wake.notify_all();
    m_reaper.join();
    // An incoming migration does not outlive this corrald: its source cannot finish it with
    // nobody here to relay the stream or confirm the switch (the source's VM runs on), and
    // nothing would end its waiting instance (the next corrald's start discards the record).
    std::map<std::string, Incoming> pending;
    {
        std::lock_guard lock(m_mutex);
        pending.swap(m_incoming);
    }
    for (const auto& [id, incoming] : pending) {
        log_info("VM {}: corrald is stopping; discarding its incoming migration {} from {}", incoming.vm, id,
                 incoming.origin);
        discard(incoming);
    }
}

void MigrationService::reap() {
    std::unique_lock lock(m_mutex);
    while (!m_stopping) {
        m_wake.wait_for(lock, 1s);
        std::vector<std::pair<std::string, std::string>> expired;  // id, why
        const auto now = std::chrono::steady_clock::now();
        for (const auto& [id, incoming] : m_incoming) {
            if (!incoming.streaming && now - incoming.created > k_stream_wait)
                expired.emplace_back(
                    id, fmt::format("no migration stream from {} within {} s", incoming.origin, k_stream_wait.count()));
            else if (incoming.streaming && !incoming.stream_ended && now - incoming.last_data > k_stream_stall_wait)
                expired.emplace_back(id, fmt::format("its migration stream from {} stalled: no data for {} s",
                                                     incoming.origin, k_stream_stall_wait.count()));
            else if (incoming.stream_ended && now - incoming.last_data > k_switch_wait)
                expired.emplace_back(id, fmt::format("{} sent its whole stream but no finish within {} s",
                                                     incoming.origin, k_switch_wait.count()));
        }
        for (const auto& [id, why] : expired) {
            Incoming incoming = m_incoming.at(id);
            m_incoming.erase(id);
            lock.unlock();
            // Its instance ends: the stream's next bytes find no reader, the WebSocket closes and
            // the source's migration fails with its VM running there (as for a killed instance).
            log_warning("VM {}: {}; discarding it", incoming.vm, why);
            discard(incoming);
            lock.lock();
        }
    }
}

Result<nlohmann::json> MigrationService::pool_identities(const inventory::VmRecord& vm) {
    nlohmann::json identities = nlohmann::json::object();
    for (const auto& disk : vm.disks) {
        auto* pool = TRY(m_storage.pool(disk.pool));
        auto* directory = dynamic_cast<storage::pool::DirectoryPool*>(pool);
        if (!directory)
            return fail(fmt::format("pool {} is not a directory pool: it cannot be shared", disk.pool), EINVAL);
        identities[disk.pool] = TRY(directory->identity());
    }
    return identities;
}

namespace {

/// True when pool `name` here is the same folder as the source's (`identities`).
bool is_shared(StorageService& storage, const std::string& name, const nlohmann::json& identities) {
    const std::string theirs =
        identities.contains(name) && identities[name].is_string() ? identities[name].get<std::string>() : "";
    auto pool = storage.pool(name);
    auto* directory = pool ? dynamic_cast<storage::pool::DirectoryPool*>(*pool) : nullptr;
    auto ours = directory ? directory->identity() : Result<std::string>(fail("not a directory pool"));
    return ours && !theirs.empty() && *ours == theirs;
}

}  // namespace

Result<std::vector<MigrationService::DiskInfo>> MigrationService::disk_infos(const inventory::VmRecord& vm) {
    std::vector<DiskInfo> disks;
    for (const auto& disk : vm.disks) {
        auto* pool = TRY(m_storage.pool(disk.pool));
        auto info = TRY_CONTEXT(pool->volume_info(disk.volume), fmt::format("disk {}/{}", disk.pool, disk.volume));
        disks.push_back({disk.pool, disk.volume, info.size_bytes});
    }
    return disks;
}

Result<std::vector<MigrationService::DiskInfo>> MigrationService::create_copies(const std::vector<DiskInfo>& disks,
                                                                                const nlohmann::json& identities) {
    std::vector<DiskInfo> wanted;
    std::map<std::string, uint64_t> needed;  // per pool: the copies' virtual sizes
    for (const auto& disk : disks) {
        auto pool = m_storage.pool(disk.pool);
        if (!pool || is_shared(m_storage, disk.pool, identities))
            continue;
        if ((*pool)->volume_info(disk.volume))
            return fail(fmt::format("disk {} is on pool {}, which {} does not share with the source, and a volume "
                                    "{} exists in its pool {} here already: nothing is overwritten (delete or rename "
                                    "it first)",
                                    disk.volume, disk.pool, m_hostname, disk.volume, disk.pool),
                        EEXIST);
        needed[disk.pool] += disk.size_bytes;
        wanted.push_back(disk);
    }
    // The virtual size, not what the source's disk takes now: the copy is flat (a backing chain's
    // data lands in it too) and the guest writes on meanwhile, so only the virtual size bounds it.
    for (const auto& [name, bytes] : needed) {
        auto usage = TRY(TRY(m_storage.pool(name))->usage());
        if (usage.available_bytes < bytes)
            return fail(fmt::format("pool {} on {} has {} MiB free; the disks copied into it need up to {} MiB (their "
                                    "virtual size)",
                                    name, m_hostname, usage.available_bytes >> 20, (bytes + (1 << 20) - 1) >> 20),
                        EBUSY);
    }
    std::vector<DiskInfo> created;
    for (const auto& disk : wanted) {
        auto* pool = TRY(m_storage.pool(disk.pool));
        auto made = pool->create_volume(disk.volume, disk.size_bytes, storage::ImageFormat::Qcow2);
        if (!made) {
            delete_copies(created);
            return fail(
                made.error().with_context(fmt::format("creating the copy of disk {}/{}", disk.pool, disk.volume)));
        }
        created.push_back(disk);
    }
    return created;
}

void MigrationService::delete_copies(const std::vector<DiskInfo>& copies) {
    for (const auto& copy : copies) {
        auto pool = m_storage.pool(copy.pool);
        auto deleted = pool ? (*pool)->delete_volume(copy.volume) : Result<void>(fail(pool.error()));
        if (!deleted && deleted.error().errno_value() == ENOENT)
            continue;  // gone with its incoming VM already
        if (!deleted)
            log_warning("migration: cannot delete the copy {}/{} made for a migration that did not switch: {}",
                        copy.pool, copy.volume, deleted.error().message());
        else
            log_info("migration: deleted {}/{}, the copy made for a migration that did not switch", copy.pool,
                     copy.volume);
    }
}

Result<std::vector<size_t>> MigrationService::check_shared_pools(const inventory::VmRecord& vm,
                                                                 const nlohmann::json& identities,
                                                                 const std::string& origin,
                                                                 const std::vector<DiskInfo>& copies) {
    std::vector<size_t> copied;
    const std::string source = origin.empty() ? "the source" : origin;
    for (size_t i = 0; i < vm.disks.size(); ++i) {
        const auto& disk = vm.disks[i];
        TRY(m_storage.pool(disk.pool));
        if (is_shared(m_storage, disk.pool, identities))
            continue;
        bool made = false;
        for (const auto& copy : copies)
            made = made || (copy.pool == disk.pool && copy.volume == disk.volume);
        if (!made)
            return fail(fmt::format("disk {} is on pool {}, which {} does not share with {} (its folder here is "
                                    "another one), and the source did not describe it for a copy",
                                    disk.volume, disk.pool, m_hostname, source),
                        EINVAL);
        if (vm.engine != "emulated")
            return fail(fmt::format("disk {} is on pool {}, which {} does not share with {}: copying a disk while "
                                    "the VM runs needs the emulated engine; local-disk migration needs a shared pool "
                                    "on the {} engine",
                                    disk.volume, disk.pool, m_hostname, source, vm.engine),
                        EINVAL);
        if (disk.readonly)
            return fail(fmt::format("disk {} is attached readonly on pool {}, which {} does not share with {}: only "
                                    "writable disks are copied; copy it there first (a volume export and import)",
                                    disk.volume, disk.pool, m_hostname, source),
                        EINVAL);
        copied.push_back(i);
    }
    return copied;
}

Result<inventory::TaskRecord> MigrationService::start(const std::string& name, MigrationTarget target) {
    auto vm = TRY(m_vms.begin_migration_out(name));
    auto task = m_tasks.start("vm.migrate", name, [this, vm, target = std::move(target)](TaskProgress& progress) {
        auto result = run(vm, target, progress);
        m_vms.end_migration_out(vm.name);
        return result;
    });
    if (!task)
        m_vms.end_migration_out(name);
    return task;
}

Result<std::string> MigrationService::run(const inventory::VmRecord& vm, const MigrationTarget& target,
                                          TaskProgress& progress) {
    const auto started = std::chrono::steady_clock::now();
    auto endpoint_result = cli::parse_remote_url(target.url);
    if (!endpoint_result)
        return fail(endpoint_result.error());
    cli::RemoteEndpoint remote = *endpoint_result;
    remote.token = target.token;
    remote.fingerprint = target.fingerprint;
    remote.answer_timeout = k_answer_wait;
    // The CA comes as text (a client names no host file); the TLS client reads it from a file.
    std::optional<fs::path> ca_file;
    auto remove_ca = [&] {
        if (ca_file) {
            std::error_code ignored;
            fs::remove(*ca_file, ignored);
        }
    };
    if (!target.ca_cert_pem.empty()) {
        ca_file = m_scratch_dir / fmt::format("migrate-ca-{}.pem", random_id());
        if (auto written = write_file_atomically(ca_file->string(), target.ca_cert_pem, 0600); !written)
            return fail(written.error());
        remote.ca_cert = ca_file->string();
    }
    cli::Endpoint endpoint;
    endpoint.remote = remote;
    cli::ApiClient client(endpoint);
    const std::string where = remote.url();
    auto refused = [&](const std::string& why) -> Result<std::string> {
        remove_ca();
        return fail(fmt::format("{}: {}; nothing moved, {} runs on here", where, why, vm.name), EIO);
    };

    progress.report(0.02, fmt::format("checking {}", where));
    auto identities = pool_identities(vm);
    if (!identities)
        return refused(identities.error().message());
    nlohmann::json body = definition_of(vm);
    nlohmann::json pools = nlohmann::json::array();
    for (const auto& [pool, identity] : identities->items())
        pools.push_back({{"name", pool}, {"identity", identity}});
    auto infos = disk_infos(vm);
    if (!infos)
        return refused(infos.error().message());
    nlohmann::json disks = nlohmann::json::array();
    for (const auto& info : *infos)
        disks.push_back({{"pool", info.pool}, {"volume", info.volume}, {"size_bytes", info.size_bytes}});
    body["migration"] = {{"origin", m_hostname}, {"pools", pools}, {"disks", disks}};
    // What the running VM has that its definition does not: a live migration is no fork, so the
    // guest keeps its generation ID (a new one would make it reseed as a clone does), and the
    // balloon target it was asked to keep stays kept there.
    if (!vm.generation_id.empty())
        body["migration"]["generation_id"] = vm.generation_id;
    if (vm.balloon_target_mib > 0)
        body["migration"]["balloon_target_mib"] = vm.balloon_target_mib;
    auto prepared = client.call({"POST", "/api/v1/migrations", body});
    if (!prepared)
        return refused(message_of(prepared.error()));
    const std::string id = prepared->value("id", "");
    if (id.size() != 34 || !id.starts_with("m-"))
        return refused("its answer carried no migration id");
    auto discard_there = [&](const std::string& why) -> Result<std::string> {
        ignore_error(client.call({"DELETE", "/api/v1/migrations/" + id, std::nullopt}),
                     "the destination also discards its half when its instance ends");
        remove_ca();
        return fail(why, EIO);
    };
    // The disks the destination copies (their pools there are other folders than here).
    std::vector<size_t> copied;
    for (const auto& index : prepared->value("copied_disks", nlohmann::json::array())) {
        if (!index.is_number_unsigned() || index.get<size_t>() >= vm.disks.size())
            return discard_there(
                fmt::format("{}: its answer named a disk {} that {} does not have; nothing moved, {} "
                            "runs on here",
                            where, index.dump(), vm.name, vm.name));
        copied.push_back(index.get<size_t>());
    }

    progress.report(0.05, fmt::format("opening the stream to {}", where));
    auto session = cli::WebSocketSession::connect(endpoint, "/api/v1/migrations/" + id + "/stream");
    if (!session)
        return discard_there(fmt::format("cannot open the migration stream to {}: {}; {} runs on here", where,
                                         session.error().message, vm.name));
    const fs::path socket = fs::path(vm.run_dir) / k_outgoing_socket;
    std::error_code ignored;
    fs::remove(socket, ignored);
    auto listener = listen_unix_socket(socket, {.backlog = 1, .permissions = 0600});
    if (!listener)
        return discard_there(fmt::format("{}; {} runs on here", listener.error().message(), vm.name));
    Relay relay(std::move(*listener), std::move(*session), fmt::format("VM {}, migration {}", vm.name, id));
    // One relayed NBD connection per copied disk, over the same TLS API and token.
    std::vector<std::unique_ptr<DiskRelay>> disk_relays;
    std::vector<engine::DiskCopy> disk_copies;
    for (size_t index : copied) {
        auto disk_session = cli::WebSocketSession::connect(endpoint, "/api/v1/migrations/" + id + "/disks");
        if (!disk_session)
            return discard_there(fmt::format("cannot open the disk stream to {}: {}; {} runs on here", where,
                                             disk_session.error().message, vm.name));
        const fs::path disk_socket = fs::path(vm.run_dir) / disk_copy_socket(index);
        fs::remove(disk_socket, ignored);
        auto disk_listener = listen_unix_socket(disk_socket, {.backlog = 1, .permissions = 0600});
        if (!disk_listener)
            return discard_there(fmt::format("{}; {} runs on here", disk_listener.error().message(), vm.name));
        disk_relays.push_back(std::make_unique<DiskRelay>(
            std::move(*disk_listener), std::move(*disk_session),
            fmt::format("VM {}, migration {}, disk {}/{}", vm.name, id, vm.disks[index].pool, vm.disks[index].volume)));
        disk_copies.push_back({index, "unix:" + disk_socket.string()});
    }
    auto remove_disk_sockets = [&] {
        for (size_t index : copied)
            fs::remove(fs::path(vm.run_dir) / disk_copy_socket(index), ignored);
    };

    engine::MigrationRequest request;
    request.to = "unix:" + socket.string();
    request.downtime_ms = target.downtime_ms;
    request.max_bandwidth_bytes = uint64_t{target.bandwidth_mib} << 20;
    request.disk_copies = disk_copies;
    // With disks to copy, they take the first half of the bar and memory the second.
    const double memory_from = copied.empty() ? 0.1 : 0.5;
    request.on_progress = [&](const engine::MigrationProgress& now) {
        if (now.phase == "copying disks") {
            double done =
                now.disk_bytes_total ? static_cast<double>(now.disk_bytes_copied) / now.disk_bytes_total : 0.0;
            progress.report(0.1 + 0.4 * std::clamp(done, 0.0, 1.0),
                            fmt::format("copying disks: {} of {} MiB copied", now.disk_bytes_copied >> 20,
                                        now.disk_bytes_total >> 20));
            return;
        }
        double done = now.total_bytes ? 1.0 - static_cast<double>(now.bytes_remaining) / now.total_bytes : 0.0;
        progress.report(memory_from + (0.9 - memory_from) * std::clamp(done, 0.0, 1.0),
                        fmt::format("{}: round {}, {} MiB sent, {} MiB to go", now.phase, now.rounds,
                                    now.bytes_sent >> 20, now.bytes_remaining >> 20));
    };
    progress.report(0.1, copied.empty() ? fmt::format("copying memory to {}", where)
                                        : fmt::format("copying {} disk(s) to {}", copied.size(), where));
    // Whether QEMU's disk locks can tell the two copies apart when nobody knows whether the
    // guest runs there: a writable disk both QEMUs open (a shared pool's, not a copy) goes to
    // whichever `cont`s first, and the other's `cont` fails (docs/migration.md "corrald").
    bool locks_decide = false;
    for (size_t i = 0; i < vm.disks.size(); ++i)
        if (!vm.disks[i].readonly && std::find(copied.begin(), copied.end(), i) == copied.end())
            locks_decide = true;
    using Then = VmManager::SwitchAnswer::Then;
    // A finish with no answer (the connection broke, timed out, the destination's corrald was
    // killed): asks, for a while, what came of it. Its half discarded on our DELETE, or no VM
    // there: it does not run there. The VM running there: it does. Never both: when that
    // cannot be known, the copy here is the certain one, and it runs on only where QEMU's disk
    // locks arbitrate (a destination QEMU that ran the guest holds them: our `cont` then fails
    // and the guest stays paused here); with every disk copied (or none), nothing would stop
    // both from running, so it stays paused here for the user to decide.
    auto settle = [&](const std::string& why) -> VmManager::SwitchAnswer {
        cli::Endpoint asking = endpoint;
        asking.remote->answer_timeout = k_settle_answer_wait;
        cli::ApiClient prober(asking);
        const auto give_up = std::chrono::steady_clock::now() + k_settle_wait;
        std::string last;
        for (;;) {
            auto discarded = prober.call({"DELETE", "/api/v1/migrations/" + id, std::nullopt});
            if (discarded)
                return {Then::ResumeHere, why + "; its half there was discarded since"};
            last = message_of(discarded.error());
            if (discarded.error().status == 404) {
                // Its finish took the migration: the VM runs there, or failed there (and went).
                auto there = prober.call({"GET", "/api/v1/vms/" + vm.name, std::nullopt});
                if (there && there->value("state", "") == "running")
                    return {Then::EndHere, ""};
                if (!there && there.error().status == 404)
                    return {Then::ResumeHere, why + "; it has no " + vm.name + " since"};
                last = there ? fmt::format("{} is {} there", vm.name, there->value("state", "?"))
                             : message_of(there.error());
            }
            if (std::chrono::steady_clock::now() > give_up)
                break;
            std::this_thread::sleep_for(1s);
        }
        log_warning("VM {}: cannot tell whether {} runs it ({}; last: {})", vm.name, where, why, last);
        if (locks_decide)
            return {
                Then::ResumeHere,
                fmt::format("{}; whether it runs there could not be told ({}): QEMU's disk locks decided", why, last)};
        return {Then::StayPaused,
                fmt::format("{}; whether it runs there could not be told ({}), and with no shared disk nothing would "
                            "stop it running twice: it stays paused here (if it does not run there, `corral vm "
                            "resume {}` here)",
                            why, last, vm.name)};
    };
    // At the switch the guest is paused here, its disks let go; it stays so until all of the
    // stream went out and the destination ran it (a stream cut, or a destination that could not
    // run it: the destination's half goes and it runs on here).
    auto confirm = [&]() -> VmManager::SwitchAnswer {
        progress.report(0.95, fmt::format("switching to {}: sending the end of the stream", where));
        if (!relay.drain(k_drain_wait)) {
            ignore_error(client.call({"DELETE", "/api/v1/migrations/" + id, std::nullopt}),
                         "the destination also discards its half when its stream breaks");
            return {Then::ResumeHere, fmt::format("the stream to {} broke at the switch: {}", where, relay.error())};
        }
        disk_relays.clear();
        progress.report(0.97, fmt::format("switching to {}: waiting for it to run {}", where, vm.name));
        auto finished = client.call({"POST", "/api/v1/migrations/" + id + "/finish", std::nullopt});
        if (finished)
            return {Then::EndHere, ""};
        const std::string why = fmt::format("{}'s whole stream went to {}, but {} did not run it: {}", vm.name, where,
                                            where, message_of(finished.error()));
        if (finished.error().status == 0)
            return settle(why);
        // An answer: its finish failed and ended its instance (or found none), or refused the
        // call; either way the guest does not run there. Its half goes (best effort).
        ignore_error(client.call({"DELETE", "/api/v1/migrations/" + id, std::nullopt}),
                     "a failed finish ended the instance there already");
        return {Then::ResumeHere, why};
    };
    auto report = m_vms.migrate_out(vm.name, request, confirm);
    fs::remove(socket, ignored);
    remove_disk_sockets();
    if (!report) {
        relay.stop();
        std::string why = report.error().message();
        if (auto relay_error = relay.error(); !relay_error.empty() && why.find(relay_error) == std::string::npos)
            why += fmt::format(" (the stream to {}: {})", where, relay_error);
        for (auto& disk_relay : disk_relays)
            if (auto disk_error = disk_relay->error(); !disk_error.empty() && why.find(disk_error) == std::string::npos)
                why += fmt::format(" (a disk stream to {}: {})", where, disk_error);
        disk_relays.clear();
        return discard_there(why);
    }
    disk_relays.clear();
    remove_ca();
    const auto total_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    log_info("VM {}: migrated to {} ({} rounds, {} bytes, {} ms downtime, {} ms in all)", vm.name, where,
             report->rounds, report->bytes_sent, report->downtime_ms, total_ms);
    // The copied disks live there now; the volumes here go (only those: a shared pool's are the
    // destination's own, and a copy's backing base stays for whatever else stands on it).
    std::string disks_note;
    for (size_t index : copied) {
        const auto& disk = vm.disks[index];
        auto pool = m_storage.pool(disk.pool);
        auto deleted = pool ? (*pool)->delete_volume(disk.volume) : Result<void>(fail(pool.error()));
        if (!deleted)
            log_warning("VM {}: migrated with its disk copied, but its old volume {}/{} stays here: {}", vm.name,
                        disk.pool, disk.volume, deleted.error().message());
        disks_note += fmt::format("{}{}/{}", disks_note.empty() ? "; disks copied, their volumes here deleted: " : ", ",
                                  disk.pool, disk.volume);
    }
    return fmt::format("{} runs on {} now: {} ms in all, {} ms downtime, {} bytes in {} rounds{}", vm.name, where,
                       total_ms, report->downtime_ms, report->bytes_sent, report->rounds, disks_note);
}

std::string MigrationService::add_incoming(const std::string& vm, const fs::path& socket, const std::string& origin,
                                           const fs::path& disk_socket, std::vector<DiskInfo> copies) {
    // "m-" first: a path parameter of the API is a name, which starts with a letter.
    std::string id = "m-" + random_id();
    std::lock_guard lock(m_mutex);
    Incoming incoming;
    incoming.vm = vm;
    incoming.socket = socket;
    incoming.origin = origin;
    incoming.disk_socket = disk_socket;
    incoming.copies = std::move(copies);
    m_incoming[id] = std::move(incoming);
    return id;
}

Result<fs::path> MigrationService::take_disk_stream(const std::string& id) {
    std::lock_guard lock(m_mutex);
    auto it = m_incoming.find(id);
    if (it == m_incoming.end())
        return fail(fmt::format("no incoming migration {}", id), ENOENT);
    if (it->second.disk_streams >= it->second.copies.size())
        return fail(
            fmt::format("migration {} copies {} disk(s); each has its stream already", id, it->second.copies.size()),
            EBUSY);
    ++it->second.disk_streams;
    return it->second.disk_socket;
}

void MigrationService::discard(const Incoming& incoming) {
    // The instance first: it has the copies open.
    m_vms.abort_incoming(incoming.vm);
    delete_copies(incoming.copies);
}

Result<fs::path> MigrationService::take_stream(const std::string& id) {
    std::lock_guard lock(m_mutex);
    auto it = m_incoming.find(id);
    if (it == m_incoming.end())
        return fail(fmt::format("no incoming migration {}", id), ENOENT);
    if (it->second.streaming)
        return fail(fmt::format("migration {} already has its stream", id), EBUSY);
    it->second.streaming = true;
    it->second.last_data = std::chrono::steady_clock::now();
    return it->second.socket;
}

void MigrationService::note_stream_data(const std::string& id) {
    std::lock_guard lock(m_mutex);
    if (auto it = m_incoming.find(id); it != m_incoming.end())
        it->second.last_data = std::chrono::steady_clock::now();
}

void MigrationService::note_stream_end(const std::string& id) {
    std::lock_guard lock(m_mutex);
    if (auto it = m_incoming.find(id); it != m_incoming.end())
        it->second.stream_ended = true;
}

void MigrationService::release_stream(const std::string& id) {
    std::lock_guard lock(m_mutex);
    if (auto it = m_incoming.find(id); it != m_incoming.end())
        it->second.streaming = false;
}

Result<MigrationService::Incoming> MigrationService::take(const std::string& id) {
    std::lock_guard lock(m_mutex);
    auto it = m_incoming.find(id);
    if (it == m_incoming.end())
        return fail(fmt::format("no incoming migration {}", id), ENOENT);
    Incoming incoming = it->second;
    m_incoming.erase(it);
    return incoming;
}

Result<std::string> MigrationService::finish(const std::string& id) {
    auto incoming = TRY(take(id));
    TRY_VOID(m_vms.finish_incoming(incoming.vm, incoming.origin, k_finish_wait));
    return incoming.vm;
}

Result<std::string> MigrationService::abort(const std::string& id) {
    auto incoming = TRY(take(id));
    discard(incoming);
    return incoming.vm;
}

}  // namespace corral::daemon
