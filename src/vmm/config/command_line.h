#pragma once

#include <optional>
#include <string>

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
    /// Set when --help or --version printed something and the program should exit 0.
    std::optional<std::string> early_output;
};

/// Parses argv. Flags override values from --config FILE. Errors name the flag and what is allowed.
Result<CommandLine> parse_command_line(int argc, char** argv);

}  // namespace corral::vmm
