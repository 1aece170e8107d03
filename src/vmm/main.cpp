// corral-vmm: boots one VM and runs it until the guest powers off, reboots or crashes.

#include <malloc.h>
#include <signal.h>

#include <cstdio>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "base/signal_mask.h"
#include "vmm/config/command_line.h"
#include "vmm/boot_files.h"
#include "vmm/control/control_server.h"
#include "vmm/config/restore_config.h"
#include "vmm/snapshot/snapshot_file.h"
#include "vmm/vmm.h"

using namespace corral;
using namespace corral::vmm;

namespace {

constexpr int k_exit_bad_usage = 2;
constexpr int k_exit_failure = 1;

int report_exit(const VmExit& exit) {
    if (exit.reason == VmExitReason::Crash || exit.reason == VmExitReason::Failure)
        log_error("{}: {}", describe(exit.reason), exit.detail);
    else
        log_info("{} ({})", describe(exit.reason), exit.detail);
    return exit_code_for(exit);
}

/// Listens on the control socket the command line names, if any. The socket outlives each boot,
/// so clients keep one address across --on-reboot restarts (and resets asked for through it).
Result<std::unique_ptr<ControlServer>> listen_for_control(const CommandLine& command_line) {
    if (command_line.control_path.empty()) return std::unique_ptr<ControlServer>();
    return ControlServer::listen(command_line.control_path);
}

/// The VM saved in --restore DIR or arriving at --migrate-listen ADDRESS, with the command
/// line's flags checked and applied (see apply_restore_flags()); `config` becomes the
/// configuration it runs with.
Result<std::unique_ptr<Vmm>> restore_vmm(const CommandLine& command_line, VmConfig& config) {
    auto adjust = [&](VmConfig& saved) -> Result<void> {
        TRY_VOID(apply_restore_flags(saved, command_line.config, command_line.restore_checks));
        // Where the console goes is the host's business, not the guest's: the command line's
        // (stdio by default) wins over the snapshot's.
        saved.console = command_line.config.console;
        saved.console_socket_path = command_line.config.console_socket_path;
        config = saved;
        return {};
    };
    if (!command_line.migrate_listen.empty()) return receive_migration_at(command_line.migrate_listen, adjust);
    return build_vmm_from_snapshot(command_line.restore_dir, adjust);
}

/// Runs the VM until it ends: restored from --restore DIR (or received at --migrate-listen) first when given, else booted from
/// `files`. A guest reset under --on-reboot restart boots the configuration's kernel again (read
/// anew: it may have been updated), a restored VM's too: its guest rebooting is a new boot, as it
/// would have been in the monitor it was saved from.
int run_vm(const CommandLine& command_line, std::optional<BootFiles> files) {
    auto control = listen_for_control(command_line);
    if (!control) {
        log_error("{}", control.error().describe());
        return k_exit_bad_usage;
    }
    VmConfig config = command_line.config;
    bool restoring = !command_line.restore_dir.empty() || !command_line.migrate_listen.empty();
    for (;;) {
        auto vmm = [&]() -> Result<std::unique_ptr<Vmm>> {
            if (std::exchange(restoring, false)) return restore_vmm(command_line, config);
            if (!files)  // a reboot in place
                files = TRY_CONTEXT(load_boot_files(config), "booting again");
            auto built = build_vmm_for_boot(config, *files);
            // The guest has its copy of the kernel and initrd now. Ours would stay in the monitor's
            // resident memory for the VM's whole life (a Debian kernel and initramfs: ~12 MiB, more
            // than the rest of the monitor), so it goes, and a reboot reads the files again.
            files.reset();
            ::malloc_trim(0);
            return built;
        }();
        if (!vmm) {
            log_error("{}", vmm.error().describe());
            return k_exit_failure;
        }
        auto exit = (*vmm)->run(control->get());
        if (!exit) {
            log_error("{}", exit.error().describe());
            return k_exit_failure;
        }
        if (exit->reason == VmExitReason::Reset && config.on_reboot == RebootAction::Restart) {
            log_info("guest reset; booting again (--on-reboot restart)");
            continue;
        }
        return report_exit(*exit);
    }
}

}  // namespace

int main(int argc, char** argv) {
    set_log_prefix("corral-vmm");
    auto command_line = parse_command_line(argc, argv);
    if (!command_line) {
        log_error("{}", command_line.error().describe());
        std::fprintf(stderr, "Run 'corral-vmm --help' for the options.\n");
        return k_exit_bad_usage;
    }
    if (command_line->early_output) {
        std::fputs(command_line->early_output->c_str(), stdout);
        return 0;
    }
    if (command_line->verbose) set_log_level(LogLevel::Debug);
    if (!command_line->inspect_dir.empty()) {
        auto inspection = snapshot::inspect_snapshot(command_line->inspect_dir);
        std::fputs(inspection.text.c_str(), stdout);
        return inspection.valid ? 0 : k_exit_failure;
    }
    const VmConfig& config = command_line->config;
    if (command_line->print_config) {
        std::puts(vm_config_to_json(config).dump(2).c_str());
        return 0;
    }

    // Block the stop signals before any thread exists: device worker threads (virtio) are made
    // while building the VM and inherit this mask, so only Vmm::run()'s signalfd sees them. A
    // thread without the mask would take SIGTERM's default action and kill the process.
    block_signals(stop_signals());

    if (!command_line->restore_dir.empty() || !command_line->migrate_listen.empty())
        return run_vm(*command_line, std::nullopt);

    // Problems with the files the user named are usage errors (exit 2); later ones are failures.
    auto loaded = load_boot_files(config);
    if (!loaded) {
        log_error("{}", loaded.error().describe());
        return k_exit_bad_usage;
    }
    return run_vm(*command_line, std::move(*loaded));
}
