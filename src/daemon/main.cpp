// corrald: the Corral host daemon. Serves the REST API (docs/api.md) on a unix socket, keeps the
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

#include "base/log.h"
#include "daemon/api/api_context.h"
#include "daemon/http/http_server.h"
#include "daemon/inventory/sqlite_inventory.h"
#include "engine/calibration.h"

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
    CLI::App app{"corrald: the Corral host daemon (REST API on a unix socket; see docs/api.md)", "corrald"};
    std::string state_dir = default_state_dir().string();
    std::string socket_path;
    std::string engine_override;
    bool verbose = false;
    app.add_option("--state-dir", state_dir, "where the inventory, pools, images and VM run folders live")
        ->capture_default_str();
    app.add_option("--socket", socket_path, "API socket (default: <state-dir>/corrald.sock)");
    app.add_option("--default-engine", engine_override,
                   "engine for VMs that name none, instead of the calibration's choice")
        ->check(CLI::IsMember({"native", "emulated"}));
    app.add_flag("-v,--verbose", verbose, "log debug messages");
    CLI11_PARSE(app, argc, argv);

    set_log_prefix("corrald");
    if (verbose) set_log_level(LogLevel::Debug);
    fs::path state(state_dir);
    if (socket_path.empty()) socket_path = (state / "corrald.sock").string();

    // Signals are handled by sigwait() in main; every thread started below inherits the mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    std::error_code error;
    fs::create_directories(state / "run", error);
    if (error) {
        log_error("cannot create the state folder {}: {}", state.string(), error.message());
        return 1;
    }
    ::chmod(state.c_str(), 0750);

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
    if (auto adopted = vms.start_supervising(); !adopted) {
        log_error("starting the supervisor: {}", adopted.error().describe());
        return 1;
    }

    HostFacts host = measure_host(state);
    host.calibration = {{"kvm", calibration.kvm},
                        {"ring0_loop_mips", calibration.ring0_loop_mips},
                        {"default_engine", calibration.default_engine},
                        {"reason", calibration.reason}};
    ApiContext context{**inventory, storage, tasks, events, vms, images, host};
    Router router;
    add_all_routes(router, context);

    auto server = HttpServer::listen_unix(socket_path, 0660, router);
    if (!server) {
        log_error("{}", server.error().describe());
        return 1;
    }
    (*server)->start();
    log_info("serving the API on {} (state in {})", socket_path, state.string());

    int signal_number = 0;
    sigwait(&stop_signals, &signal_number);
    log_info("signal {}: stopping (VMs keep running; the next corrald adopts them)", signal_number);
    (*server)->stop();
    return 0;
}
