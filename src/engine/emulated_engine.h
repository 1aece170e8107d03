#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace corral::engine {

/// The QEMU (TCG) command line for `spec`, argv[0] = `qemu`. Sockets and the console log go
/// into spec.run_dir. Option values are escaped for QEMU (a ',' is doubled).
std::vector<std::string> qemu_command_line(const LaunchSpec& spec,
                                           const std::filesystem::path& qemu);

/// "qemu-system-x86_64 7.2.22" from `qemu --version` output's first line; empty if unrecognized.
std::string parse_qemu_version(const std::string& version_output);

}  // namespace corral::engine
