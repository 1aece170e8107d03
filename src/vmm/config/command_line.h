#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/config/vm_config.h"

namespace corral::vmm {

/// What `corral-vmm` was asked to do.
struct CommandLine {
    VmConfig config;
    bool print_config = false;  // print the effective config as JSON and exit
    bool verbose = false;
    /// --control PATH: the unix socket of the JSON control API; empty for none.
    std::string control_path;
    /// --restore DIR: start the VM saved in this snapshot folder instead of booting a kernel.
    /// `config` then holds only what the flags gave, and `restore_checks` names those flags:
    /// each must agree with the snapshot's configuration (--console, --control and -v may differ).
    std::string restore_dir;
    std::vector<std::string> restore_checks;
    /// --migrate-listen ADDRESS (unix:PATH or tcp:HOST:PORT): wait there for a live migration
    /// stream and run the VM it brings. Flags are checked and applied as with --restore.
    std::string migrate_listen;
    /// --inspect-snapshot DIR: describe a snapshot folder and exit.
    std::string inspect_dir;
    /// Set when --help or --version printed something and the program should exit 0.
    std::optional<std::string> early_output;
};

/// Parses argv. Flags override values from --config FILE. Errors name the flag and what is allowed.
Result<CommandLine> parse_command_line(int argc, char** argv);

}  // namespace corral::vmm
