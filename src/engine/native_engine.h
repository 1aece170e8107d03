#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace corral::engine {

/// The corral-vmm command line for `spec`, argv[0] = `corral_vmm`; the console is a unix
/// socket in spec.run_dir, a guest reboot restarts the VM.
std::vector<std::string> vmm_command_line(const LaunchSpec& spec,
                                          const std::filesystem::path& corral_vmm);

}  // namespace corral::engine
