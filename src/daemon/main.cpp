// corrald: the Corral host daemon. Serves the REST API (docs/api.md) on a unix socket (and, with
// --listen, on TCP with TLS and bearer tokens), keeps the
// inventory in SQLite, runs VMs on the engine the host calibration picked, and supervises them.
// Stopping corrald never stops VMs; starting it again adopts them.
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/log.h"
#include "base/signal_mask.h"
#include "base/size.h"
#include "daemon/alarm_service.h"
#include "daemon/api/api_context.h"
#include "daemon/backup_scheduler.h"
#include "daemon/backup_service.h"
#include "daemon/http/bearer_auth.h"
#include "daemon/http/http_server.h"
#include "daemon/http/listen_address.h"
#include "daemon/http/request_body.h"
#include "daemon/http/tls_context.h"
#include "daemon/inventory/sqlite_inventory.h"
#include "daemon/metrics_history.h"
#include "daemon/migration_service.h"
#include "daemon/network/nic_ipv6.h"
#include "daemon/nic_plumbing.h"
#include "daemon/noisy_neighbour.h"
#include "daemon/state_lock.h"
#include "daemon/tokens.h"
#include "daemon/web/static_files.h"
#include "daemon/web/web_gate.h"
#include "daemon/web/web_sessions.h"
#include "engine/calibration.h"
#include "engine/process.h"

namespace fs = std::filesystem;
using namespace corral;
using namespace corral::daemon;

namespace {

fs::path default_state_dir() {
    if (::geteuid() == 0) return "/var/lib/corral";
    const char* home = std::getenv("HOME");
    if (!home || !*home) {
        const passwd* entry = ::getpwuid(::geteuid());
        home = entry ? entry->pw_dir : "/tmp";
    }
    return fs::path(home) / ".local/share/corral";
}

fs::path self_exe() {
    std::error_code error;
    auto path = fs::read_symlink("/proc/self/exe", error);
    return error ? fs::path("corrald") : path;
}

/// tools/guest-image: $CORRAL_GUEST_IMAGE_TOOL, else the checkout this corrald was built from
/// (build/src/daemon/corrald -> tools/guest-image), else an installed copy.
fs::path find_guest_image_tool(const fs::path& exe) {
    if (const char* env = std::getenv("CORRAL_GUEST_IMAGE_TOOL"); env && *env) return env;
    for (const auto& candidate : {exe.parent_path() / "../../../tools/guest-image",
                                  exe.parent_path() / "../share/corral/guest-image",
                                  fs::path("/usr/lib/corral/guest-image")}) {
        std::error_code error;
        if (fs::exists(candidate, error)) return fs::weakly_canonical(candidate, error);
    }
    return "guest-image";
}

HostFacts measure_host(const fs::path& state_dir) {
    HostFacts facts;
    char name[256] = {};
    ::gethostname(name, sizeof(name) - 1);
    facts.hostname = name;
    facts.cpus = static_cast<unsigned>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
    struct sysinfo info {};
    ::sysinfo(&info);
    facts.memory_mib = static_cast<uint64_t>(info.totalram) * info.mem_unit / (1024 * 1024);
    facts.state_dir = state_dir;
    return facts;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"corrald: the Corral host daemon (REST API on a unix socket, and on TCP with TLS and bearer "
                 "tokens with --listen; see docs/api.md)",
                 "corrald"};
    std::string state_dir = default_state_dir().string();
    std::string socket_path;
    std::string engine_override;
    std::vector<std::string> listen_values;
    std::string tls_cert;
    std::string tls_key;
    HostAccessConfig allowed;
    std::string max_upload = "1T";
    std::string web_dir;
    unsigned session_lifetime = 8 * 3600;
    unsigned metrics_interval = 10;
    bool verbose = false;
    bool no_default_network = false;
    std::string cgroup_parent = "corral";
    app.add_option("--state-dir", state_dir, "where the inventory, pools, images and VM run folders live")
        ->capture_default_str();
    app.add_option("--socket", socket_path, "API socket (default: <state-dir>/corrald.sock)");
    app.add_option("--default-engine", engine_override,
                   "engine for VMs that name none, instead of the calibration's choice")
        ->check(CLI::IsMember({"native", "emulated"}));
    app.add_option("--listen", listen_values,
                   "also serve the API on TCP, TLS only, bearer tokens required: IPv4:PORT, [IPv6]:PORT or "
                   "localhost:PORT (repeatable; PORT 0 picks a free port)")
        ->type_name("HOST:PORT");
    app.add_option("--tls-cert", tls_cert,
                   "PEM certificate (chain) for --listen (default: a self-signed one made once in "
                   "<state-dir>/tls/)")
        ->type_name("FILE");
    app.add_option("--tls-key", tls_key, "PEM private key of --tls-cert")->type_name("FILE");
    app.add_option("--allow-path", allowed.paths,
                   "let clients over TCP name host files and folders inside DIR (volume import and export, "
                   "pool paths, image files; repeatable; default: none, such requests are served on the unix "
                   "socket only). Paths are resolved without leaving DIR; DIR may not overlap the state folder")
        ->type_name("DIR");
    app.add_option("--allow-bridge", allowed.bridges,
                   "let clients over TCP put VM NICs on host bridge NAME (repeatable; default: none, only over the "
                   "unix socket)")
        ->type_name("NAME");
    app.add_option("--allow-tap", allowed.taps,
                   "let clients over TCP give VMs the existing tap NAME (repeatable; default: none, only over the "
                   "unix socket)")
        ->type_name("NAME");
    app.add_option("--allow-webhook", allowed.webhooks,
                   "let clients over TCP give alarms a webhook URL starting with URL-PREFIX (repeatable; default: "
                   "none, webhooks are set over the unix socket only, since corrald calls them)")
        ->type_name("URL-PREFIX");
    app.add_option("--max-upload", max_upload,
                   "the largest image a client may upload as a volume (PUT .../content), e.g. 64G")
        ->type_name("SIZE")
        ->capture_default_str();
    app.add_option("--web-dir", web_dir,
                   "the web UI's built files, served at / (default: build/web/dist next to a corrald in a build tree, "
                   "else PREFIX/share/corral/web)")
        ->type_name("DIR");
    app.add_option("--session-lifetime", session_lifetime,
                   "how long a web UI sign-in lasts, in seconds (1 to 2592000, 30 days)")
        ->type_name("SECONDS")
        ->check(CLI::Range(1u, 2592000u))
        ->capture_default_str();
    app.add_option("--metrics-interval", metrics_interval,
                   "seconds between two samples of the metrics history (kept: an hour of them, and a day of one in "
                   "6; 1 to 600)")
        ->type_name("SECONDS")
        ->check(CLI::Range(1u, 600u))
        ->capture_default_str();
    app.add_flag("--no-default-network", no_default_network,
                 "do not create the default NAT network on the first start (tests that share the host's network "
                 "namespace use this)");
    app.add_option("--cgroup-parent", cgroup_parent,
                   "the cgroup folder that holds one group per running VM (v1: inside corrald's own group of "
                   "each hierarchy; v2: at the top of the tree)")
        ->check([](const std::string& name) -> std::string {
            const bool plain = !name.empty() && name != "." && name != ".." && name.size() <= 64 &&
                               name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") ==
                                   std::string::npos;
            return plain ? "" : "a folder name of letters, digits, '-', '_' and '.' (at most 64)";
        })
        ->type_name("NAME")
        ->capture_default_str();
    app.add_flag("-v,--verbose", verbose, "log debug messages");
    CLI11_PARSE(app, argc, argv);

    set_log_prefix("corrald");
    if (verbose) set_log_level(LogLevel::Debug);
    fs::path state(state_dir);
    if (socket_path.empty()) socket_path = (state / "corrald.sock").string();

    const auto max_upload_bytes = corral::parse_size(max_upload);
    if (!max_upload_bytes || *max_upload_bytes == 0) {
        log_error("--max-upload '{}' is not a size like 64G, 512M or 1099511627776", max_upload);
        return 2;
    }

    // Everything about --listen is checked before anything is created, so a mistake there
    // leaves no state folder, inventory or certificate behind.
    std::vector<ListenAddress> listen_addresses;
    for (const auto& value : listen_values) {
        auto parsed = parse_listen_address(value);
        if (!parsed) {
            log_error("{}", parsed.error().message());
            return 2;
        }
        listen_addresses.push_back(*parsed);
    }
    if (tls_cert.empty() != tls_key.empty()) {
        log_error("--tls-cert and --tls-key go together: give both (a certificate and its key), or neither for a "
                  "self-signed certificate in {}",
                  (state / "tls").string());
        return 2;
    }
    if (!tls_cert.empty() && listen_addresses.empty()) {
        log_error("--tls-cert and --tls-key are for the TCP listener: add --listen HOST:PORT (the unix socket "
                  "does not use TLS)");
        return 2;
    }
    std::unique_ptr<TlsContext> tls;
    if (!tls_cert.empty()) {
        auto loaded = TlsContext::from_files(tls_cert, tls_key);
        if (!loaded) {
            log_error("{}", loaded.error().message());
            return 2;
        }
        tls = std::move(*loaded);
    }
    auto host_access = HostAccess::open(allowed, state);
    if (!host_access) {
        log_error("{}", host_access.error().describe());
        return 2;
    }
    // Bound now (a port in use is an error before anything is created), served once all is ready.
    std::vector<TcpListener> tcp_listeners;
    for (const auto& address : listen_addresses) {
        auto bound = bind_tcp(address);
        if (!bound) {
            log_error("{}", bound.error().message());
            return 2;
        }
        tcp_listeners.push_back(std::move(*bound));
    }

    // Signals are handled by sigwait() in main; every thread started below inherits the mask.
    const sigset_t stopping = stop_signals();
    block_signals(stopping);
    ::signal(SIGPIPE, SIG_IGN);

    std::error_code error;
    fs::create_directories(state / "run", error);
    if (error) {
        log_error("cannot create the state folder {}: {}", state.string(), error.message());
        return 1;
    }
    ::chmod(state.c_str(), 0750);
    // One corrald per state folder, decided before the inventory is opened: a second one must not
    // fail the first one's tasks, adopt its VMs or change their state reasons.
    auto state_lock = StateLock::acquire(state);
    if (!state_lock) {
        log_error("{}", state_lock.error().describe());
        return 1;
    }

    auto inventory = inventory::SqliteInventory::open((state / "inventory.db").string());
    if (!inventory) {
        log_error("opening the inventory: {}", inventory.error().describe());
        return 1;
    }
    EventBus events;
    TaskManager tasks(**inventory, events);
    tasks.fail_interrupted_tasks();
    StorageService storage(**inventory, state);
    if (auto pool = storage.ensure_default_pool(); !pool) {
        log_error("creating the default pool: {}", pool.error().describe());
        return 1;
    }
    fs::path exe = self_exe();
    ImageService images(**inventory, storage, state, find_guest_image_tool(exe));

    auto paths = engine::EnginePaths::discover(exe);
    auto calibration = engine::calibrate_host(paths);
    std::string default_engine = engine_override.empty() ? calibration.default_engine : engine_override;
    log_info("host calibration: KVM {}; default engine {} ({})", calibration.kvm, default_engine, calibration.reason);

    VmManager::Engines engines;
    engines["native"] = engine::make_native_engine(paths);
    engines["emulated"] = engine::make_emulated_engine(paths);
    VmManager vms(**inventory, storage, tasks, events, std::move(engines), default_engine, state / "run");
    BackupService backups(state, **inventory, storage, vms);
    auto cgroups = CgroupLayout::detect(cgroup_parent);
    log_info("cgroups: {}{}{}", to_string(cgroups.version), cgroups.note.empty() ? "" : ": ", cgroups.note);
    vms.set_cgroups(std::move(cgroups));
    // The overcommit policy, before adoption (a restart policy may start a VM at once): a file
    // that is there but wrong stops corrald (no guessed policy).
    auto policy = load_capacity_policy(state / "capacity.json");
    if (!policy) {
        log_error("{}", policy.error().describe());
        return 1;
    }
    const HostFacts size = measure_host(state);
    vms.set_capacity(*policy, HostSize{size.cpus, size.memory_mib});
    if (auto adopted = vms.start_supervising(); !adopted) {
        log_error("starting the supervisor: {}", adopted.error().describe());
        return 1;
    }
    // Throwaway VMs of backup boot checks a killed corrald left (docs/backup.md "Proven to boot"):
    // adopted above if still running, killed and deleted now, in the background.
    if (backups.has_boot_leftovers())
        if (auto task = tasks.start("backup.boot-cleanup", "boot checks",
                                    [&backups](TaskProgress&) { return backups.remove_boot_leftovers(); });
            !task)
            log_warning("removing the throwaway VMs of boot checks: {}", task.error().describe());

    NetworkService networks(**inventory, state, no_default_network ? NetworkService::DefaultNetwork::Skip
                                                                    : NetworkService::DefaultNetwork::Create);
    // The firewall's ports: every NIC on a managed network, by its host-side tap (anti-spoofing
    // pins the tap to the NIC's MAC, its fixed address and, on a network with subnet6, the
    // address SLAAC gives it).
    networks.set_port_source([&inventory]() {
        std::vector<net::firewall::Port> ports;
        auto vms = (*inventory)->list_vms();
        if (!vms) return ports;
        const auto subnet6 = subnet6_by_network(**inventory);
        for (const auto& vm : *vms)
            for (size_t i = 0; i < vm.nics.size(); ++i) {
                const auto& nic = vm.nics[i];
                if (nic.network.empty() || nic.mac.empty()) continue;
                net::firewall::Port port;
                port.tap = NicPlumbing::tap_name_for(vm.name, i);
                port.network = nic.network;
                port.mac = nic.mac;
                if (!nic.ipv4.empty()) port.addresses.push_back(nic.ipv4);
                // Only beside an IPv4 address: a port with addresses drops every other source,
                // and a NIC without a fixed IPv4 one is not pinned at all.
                if (auto prefix = subnet6.find(nic.network); prefix != subnet6.end() && !nic.ipv4.empty())
                    if (auto ipv6 = nic_ipv6_address(prefix->second, nic.mac); !ipv6.empty())
                        port.addresses.push_back(ipv6);
                // Groups match by address: a NIC without a known one carries none (the API
                // refuses that pairing; an inventory edited by hand must not break the firewall).
                if (!port.addresses.empty()) port.groups = nic.groups;
                ports.push_back(std::move(port));
            }
        return ports;
    });
    if (auto started = networks.start(); !started) {
        log_error("starting the networks: {}", started.error().describe());
        return 1;
    }

    HostFacts host = measure_host(state);
    host.calibration = {{"kvm", calibration.kvm},
                        {"ring0_loop_mips", calibration.ring0_loop_mips},
                        {"default_engine", calibration.default_engine},
                        {"reason", calibration.reason}};

    if (!tcp_listeners.empty() && !tls) {
        auto made = TlsContext::self_signed(state / "tls", host.hostname);
        if (!made) {
            log_error("TLS certificate for --listen: {}", made.error().describe());
            return 1;
        }
        tls = std::move(*made);
    }
    host.api = {{"unix_socket", socket_path}, {"listen", nlohmann::json::array()}, {"tls_fingerprint", nullptr}};
    for (const auto& listener : tcp_listeners) host.api["listen"].push_back(listener.address.to_string());
    if (tls) host.api["tls_fingerprint"] = tls->fingerprint();

    ApiContext context{**inventory, storage, tasks, events, vms, images, host, **host_access};
    context.max_upload_bytes = *max_upload_bytes;
    context.networks = &networks;
    context.backups = &backups;
    MigrationService migrations(vms, storage, tasks, host.hostname, state / "run");
    context.migrations = &migrations;
    // Its thread starts once the API can be served; a run missed while corrald was down runs now.
    BackupScheduler schedules(state, backups, tasks);
    context.backup_schedules = &schedules;
    WebSessions sessions{std::chrono::seconds(session_lifetime)};
    context.sessions = &sessions;
    StaticFiles web_files(web_dir.empty() ? default_web_dir(exe) : fs::path(web_dir));
    context.web = &web_files;
    if (!web_files.available())
        log_warning("the web UI is not built ({} does not exist): / answers how to build it", web_files.root().string());
    // Before the history, whose sampling thread uses them until the history is destroyed.
    NoisyNeighbourWatch noisy_neighbours;
    AlarmService alarms(state, events, host.cpus);
    if (auto loaded = alarms.load(); !loaded) {
        log_error("alarm rules: {}", loaded.error().describe());
        return 1;
    }
    context.alarms = &alarms;
    MetricsHistory metrics_history(
        HistoryTiers{std::chrono::seconds(metrics_interval)},
        // Each sample is timed when it is read: a slow VM must not skew the others' rates.
        [&inventory, &vms](double) {
            std::vector<std::pair<std::string, std::optional<MetricsSample>>> readings;
            auto list = (*inventory)->list_vms();
            if (!list) return readings;
            for (const auto& vm : *list) {
                std::optional<MetricsSample> sample;
                if (vm.state == "running" || vm.state == "paused")
                    if (auto metrics = vms.metrics(vm.name))
                        sample = sample_of(*metrics, unix_now(), static_cast<unsigned>(vm.vcpus));
                readings.emplace_back(vm.name, sample);
            }
            return readings;
        },
        [](double) -> std::optional<MetricsSample> {
            auto stat = engine::read_text_file("/proc/stat");
            auto meminfo = engine::read_text_file("/proc/meminfo");
            if (!stat || !meminfo) return std::nullopt;
            return host_sample_from_proc(*stat, *meminfo, unix_now());
        });
    context.metrics_history = &metrics_history;
    metrics_history.on_tick([&noisy_neighbours, &alarms, &events](const auto& readings, const auto& host_sample) {
        for (auto& event : noisy_neighbours.observe(readings)) {
            log_warning("{}", event.value("message", ""));
            events.publish(std::move(event));
        }
        alarms.observe(readings, host_sample);
    });
    metrics_history.start();
    schedules.start();
    // Destroyed before the services above (and after the API servers below): the tasks still
    // running end while the backups, VMs and networks their work uses are still there.
    struct TasksEndFirst {
        TaskManager& tasks;
        ~TasksEndFirst() { tasks.stop(); }
    } tasks_end_first{tasks};
    Router router;
    add_all_routes(router, context);

    auto server = HttpServer::listen_unix(socket_path, 0660, router);
    if (!server) {
        log_error("{}", server.error().describe());
        return 1;
    }
    std::vector<std::unique_ptr<HttpServer>> servers;
    servers.push_back(std::move(*server));
    BearerAuth bearer_auth(
        [&inventory](std::string_view secret) -> Result<std::optional<std::string>> {
            auto token = TRY(find_token(**inventory, secret));
            if (!token) return std::optional<std::string>();
            return std::optional<std::string>(token->name);
        },
        [&inventory](const std::string& name) {
            // Bookkeeping only: a failure here must not refuse the request.
            if (auto touched = (*inventory)->touch_token(name); !touched)
                log_warning("recording the use of token {}: {}", name, touched.error().describe());
        });
    WebGate gate(bearer_auth, sessions);
    for (auto& listener : tcp_listeners) {
        servers.push_back(HttpServer::serve_tls(std::move(listener), *tls, router,
                                                [&gate](HttpRequest& request) { return gate.check(request); }));
    }
    for (auto& each : servers) each->start();
    log_info("serving the API on {} (state in {})", socket_path, state.string());
    for (size_t i = 1; i < servers.size(); ++i)
        log_info("serving the API on https://{} (TLS only; bearer tokens required) and the web UI at https://{}/",
                 servers[i]->address(), servers[i]->address());
    if (tls)
        log_info("TLS certificate {}: SHA-256 fingerprint {}", tls->cert_path().string(), tls->fingerprint());
    if (servers.size() > 1)
        log_info(
            "over TCP, host paths are taken inside: {}; bridges: {}; taps: {}; webhooks: {} (--allow-path, "
            "--allow-bridge, --allow-tap, --allow-webhook)",
            allowed.paths.empty() ? "nowhere" : fmt::format("{}", fmt::join(allowed.paths, ", ")),
            allowed.bridges.empty() ? "none" : fmt::format("{}", fmt::join(allowed.bridges, ", ")),
            allowed.taps.empty() ? "none" : fmt::format("{}", fmt::join(allowed.taps, ", ")),
            allowed.webhooks.empty() ? "none" : fmt::format("{}", fmt::join(allowed.webhooks, ", ")));

    int signal_number = 0;
    sigwait(&stopping, &signal_number);
    log_info("signal {}: stopping (VMs keep running; the next corrald adopts them)", signal_number);
    for (auto& each : servers) each->stop();
    return 0;
}
