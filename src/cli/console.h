#pragma once

#include <string>

#include "cli/endpoint.h"

namespace corral::cli {

/// The detach key for `corral vm console`: Ctrl-] (0x1d), as telnet and virsh use.
inline constexpr char k_detach_key = 0x1d;

/// Attaches this process's stdin/stdout to a VM's console WebSocket. On a terminal stdin is put
/// in raw mode (restored on every exit path) and Ctrl-] detaches; otherwise bytes are piped both
/// ways until stdin ends (after a short drain of the console's answer) or the console closes.
/// Returns the exit code.
int run_console(const Endpoint& endpoint, const std::string& vm, const std::string& target);

/// Prints the event stream, one line per event (the JSON itself with `json`), until corrald closes it.
int run_events(const Endpoint& endpoint, const std::string& target, bool json);

}  // namespace corral::cli
