#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace corral::cli {

/// Renders a daemon answer for people: tables for lists, `key: value` lines for single objects.
/// Missing fields show as `-`, so an older or newer daemon never breaks the output.
/// How bytes a guest printed are shown: Escaped (the default) makes terminal control sequences
/// visible and inert; Raw (`--raw`) passes them to the terminal as they are.
enum class GuestText { Escaped, Raw };

std::string render(View view, const nlohmann::json& answer, GuestText guest = GuestText::Escaped);

/// Guest console output made safe for a terminal: ESC shows as `^[` and every other C0 control
/// but newline and tab in caret notation (`^G`, DEL as `^?`), C1 controls (U+0080-U+009F) as
/// `\u009b`, bytes that are not UTF-8 as `\xff`; a CR before a newline is dropped. So a guest
/// cannot set the clipboard (OSC 52), retitle or clear the terminal, or move the cursor.
std::string escape_guest_text(std::string_view text);

/// `corral doctor`'s exit code from GET /host/doctor's counts: 6 errors, 5 warnings, else 0.
int doctor_exit_code(const nlohmann::json& report);

/// A one-line summary of a task: `t-17 vm.start web1: failed: <error>`.
std::string describe_task(const nlohmann::json& task);

/// The text of a task's error (`error` may be a string or an object with `message`), empty if none.
std::string task_error(const nlohmann::json& task);

}  // namespace corral::cli
