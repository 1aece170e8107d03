#include "vmm/config/command_line.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/version.h"
#include "vmm/migration/endpoint.h"

namespace corral::vmm {
namespace {

constexpr const char* k_description =
    "corral-vmm: a KVM virtual machine monitor. Boots a Linux bzImage or an ELF kernel with an "
    "optional initramfs; the guest's serial console (ttyS0) is on stdin/stdout (Ctrl-A x quits "
    "on a terminal). Exit code: 0 when the guest powers off or reboots, 1 when it crashes or the "
    "monitor fails, 2 for bad options.";

Result<VmConfig> read_config_file(const std::string& path) {
    std::ifstream file(path);
    if (!file) return fail(fmt::format("--config: cannot read '{}'", path), errno);
    nlohmann::json document = nlohmann::json::parse(file, nullptr, /*allow_exceptions=*/false);
    if (document.is_discarded()) return fail(fmt::format("--config: '{}' is not valid JSON", path));
    return vm_config_from_json(document);
}

}  // namespace

Result<CommandLine> parse_command_line(int argc, char** argv) {
    CLI::App app(k_description, "corral-vmm");
    app.set_version_flag("--version", fmt::format("corral-vmm {}", k_version));

    std::string config_path, kernel, initrd, cmdline, memory, on_reboot, console;
    uint64_t cpus = 0;
    int64_t shutdown_timeout = -1;
    bool hugepages = false;
    bool rng = false;
    bool balloon = false;
    std::string virtio_console;
    std::vector<std::string> nets;
    std::vector<std::string> disks;
    std::string display, vnc, vnc_view_only;
    CommandLine result;

    app.add_option("--config", config_path, "JSON file with the VM config (flags override it)");
    app.add_option("--kernel", kernel, "Linux bzImage or ELF kernel to boot (required)");
    app.add_option("--initrd", initrd, "initramfs to load");
    app.add_option("--cmdline", cmdline, "kernel command line")
        ->default_str(VmConfig{}.cmdline);
    app.add_option("--memory", memory, "guest RAM: 512M, 2G, ... (default 512M)");
    app.add_option("--cpus", cpus, "number of vCPUs, 1-254 (default 1)");
    app.add_flag("--hugepages", hugepages, "back guest RAM with hugetlbfs pages");
    app.add_option("--on-reboot", on_reboot, "when the guest reboots: exit (default) or restart");
    app.add_option("--console", console,
                   "serial console: stdio (default), none, or socket=PATH (a unix socket to attach to)");
    app.add_option("--shutdown-timeout", shutdown_timeout,
                   "seconds SIGTERM waits for the guest to power off (default 10)");
    app.add_flag("--rng", rng, "add a virtio-rng entropy device fed by the host's getrandom() (off by default)");
    app.add_flag("--balloon", balloon,
                 "add a virtio-balloon with guest statistics and free page reporting; the control socket's "
                 "\"balloon\" action sets its target (off by default)");
    app.add_option("--virtio-console", virtio_console,
                   "add a virtio-console (the guest's /dev/hvc0): alone, its output goes where the serial "
                   "console's goes (no input); socket=PATH puts it on a unix socket, output and input")
        ->expected(0, 1)
        ->type_name("[socket=PATH]");
    app.add_option("--net", nets,
                   "add a virtio-net NIC: tap=NAME[,mac=52:54:00:xx:xx:xx] or fd=N[,mac=...] (an inherited "
                   "tap fd); rate limits: bps=N (bytes/s) and pps=N (frames/s) for each direction, or "
                   "rx_bps, rx_pps (to the guest), tx_bps, tx_pps (from the guest); 0: unlimited; repeatable")
        ->take_all();
    app.add_option("--disk", disks,
                   "add a virtio-blk disk: path=FILE[,readonly=on|off][,serial=S][,format=raw|qcow2][,bps=N]"
                   "[,iops=N]; repeatable (/dev/vda, /dev/vdb, ... in order)")
        ->take_all();
    app.add_option("--display", display,
                   "add a virtio-gpu display (preferred mode WIDTHxHEIGHT, 640x480 to 3840x2160) and a virtio "
                   "keyboard and tablet");
    app.add_option("--vnc", vnc, "serve the display over VNC (RFB 3.8) on unix:PATH (needs --display)");
    app.add_option("--vnc-view-only", vnc_view_only,
                   "serve the display over VNC on unix:PATH to viewers whose keys and pointer are ignored "
                   "(needs --display)");
    app.add_option("--control", result.control_path,
                   "listen on a unix socket for JSON control requests, one per line: status, pause, resume, "
                   "shutdown, stop, counters, reset, snapshot, migrate, screenshot");
    app.add_option("--restore", result.restore_dir,
                   "start the VM saved in this snapshot folder (see the control request \"snapshot\"); "
                   "VM flags given with it must match the snapshot's configuration");
    app.add_option("--migrate-listen", result.migrate_listen,
                   "wait on unix:PATH or tcp:HOST:PORT for a live migration (the control request \"migrate\" "
                   "of another corral-vmm) and run the VM it brings; VM flags given with it are checked as with "
                   "--restore");
    app.add_option("--inspect-snapshot", result.inspect_dir,
                   "print what a snapshot folder holds (version, configuration, sizes, checksum verdict) and exit");
    app.add_flag("--print-config", result.print_config, "print the effective config as JSON and exit");
    app.add_flag("-v,--verbose", result.verbose, "log debug messages");

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp&) {
        result.early_output = app.help();
        return result;
    } catch (const CLI::CallForVersion&) {
        result.early_output = fmt::format("corral-vmm {}\n", k_version);
        return result;
    } catch (const CLI::ParseError& error) {
        return fail(error.what());
    }

    if (!config_path.empty()) result.config = TRY(read_config_file(config_path));
    VmConfig& config = result.config;
    if (!kernel.empty()) config.kernel_path = kernel;
    if (!initrd.empty()) config.initrd_path = initrd;
    if (app.count("--cmdline")) config.cmdline = cmdline;
    if (!memory.empty()) config.memory_bytes = TRY(parse_memory_size(memory, "--memory"));
    if (app.count("--cpus")) {
        if (cpus < 1 || cpus > k_max_cpus)
            return fail(fmt::format("--cpus must be between 1 and {}, got {}", k_max_cpus, cpus));
        config.cpus = static_cast<uint32_t>(cpus);
    }
    if (hugepages) config.page_backing = PageBacking::Huge;
    if (rng) config.rng = true;
    if (balloon)
        config.balloon = true;
    if (app.count("--virtio-console")) TRY_VOID(parse_virtio_console(virtio_console, "--virtio-console", config));
    if (!nets.empty()) {
        config.nets.clear();  // --net replaces the config file's NICs
        for (size_t i = 0; i < nets.size(); ++i) config.nets.push_back(TRY(parse_net_option(nets[i], i)));
    }
    if (!disks.empty()) {
        config.disks.clear();  // --disk replaces the config file's disks
        for (const std::string& disk : disks) config.disks.push_back(TRY(parse_disk_option(disk)));
    }
    if (app.count("--display")) TRY_VOID(parse_display(display, "--display", config));
    if (app.count("--vnc")) TRY_VOID(parse_vnc_address(vnc, "--vnc", config.vnc_socket_path));
    if (app.count("--vnc-view-only"))
        TRY_VOID(parse_vnc_address(vnc_view_only, "--vnc-view-only", config.vnc_view_only_socket_path));
    if (!on_reboot.empty()) {
        if (on_reboot != "exit" && on_reboot != "restart")
            return fail(fmt::format("--on-reboot must be 'exit' or 'restart', got '{}'", on_reboot));
        config.on_reboot = on_reboot == "exit" ? RebootAction::Exit : RebootAction::Restart;
    }
    if (!console.empty()) TRY_VOID(parse_console(console, "--console", config));
    if (shutdown_timeout >= 0) config.shutdown_timeout_seconds = static_cast<uint32_t>(shutdown_timeout);
    if (app.count("--shutdown-timeout") && (shutdown_timeout < 0 || shutdown_timeout > 3600))
        return fail("--shutdown-timeout must be between 0 and 3600 seconds");
    if (!result.inspect_dir.empty()) return result;
    if (!result.restore_dir.empty() && !result.migrate_listen.empty())
        return fail("--restore and --migrate-listen exclude each other: a VM comes from a snapshot or from a migration");
    if (!result.migrate_listen.empty()) TRY_VOID(migration::parse_endpoint(result.migrate_listen, "--migrate-listen"));
    if (!result.restore_dir.empty() || !result.migrate_listen.empty()) {
        // The snapshot has the configuration; flags that shape the guest are checks against it.
        for (const char* flag : {"--config", "--kernel", "--initrd", "--cmdline", "--memory", "--cpus", "--hugepages",
                                 "--rng", "--balloon", "--virtio-console", "--net", "--disk", "--on-reboot",
                                 "--shutdown-timeout", "--display", "--vnc", "--vnc-view-only"})
            if (app.count(flag)) result.restore_checks.push_back(flag);
        return result;
    }
    TRY_VOID(validate(config));
    return result;
}

}  // namespace corral::vmm
