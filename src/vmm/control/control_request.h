#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace corral::vmm {

/// What a control client asked for: one typed action per request line (see control_server.h).
enum class ControlAction { Status, Pause, Resume, Shutdown, Stop, Counters, Reset };

/// The action's name on the wire ("status", "pause", ...).
const char* to_string(ControlAction action);

/// Parses one request line: a JSON object with an "action" string naming a ControlAction.
/// The error is the sentence sent back to the client ("not JSON", "unknown action 'x'").
Result<ControlAction> parse_control_request(std::string_view line);

/// `{"ok":false,"error":message}` as one line (without the newline).
std::string control_error_answer(std::string_view message);

}  // namespace corral::vmm
