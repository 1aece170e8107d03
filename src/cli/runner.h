#pragma once

#include <functional>
#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/api.h"
#include "cli/commands.h"

namespace corral::cli {

/// Where progress goes and how it looks.
enum class ProgressStyle {
    Bar,    ///< a redrawn bar (stderr is a terminal)
    Lines,  ///< a plain line whenever the progress or message changes
    Quiet,  ///< nothing
};

/// How to wait for a task.
struct WaitOptions {
    int poll_seconds = 30;  ///< the long-poll `?wait=` value
    int give_up_after = 0;  ///< seconds; 0 waits for ever
    int countdown_seconds = 0;  ///< while the task waits for a guest: seconds before it is killed (or reset)
    std::string countdown_ending = "killed";  ///< "killed" (vm stop) or "reset" (vm reboot)
    bool cancelling = false;  ///< `task cancel`: a cancelled task is the outcome asked for, not an error
    ProgressStyle style = ProgressStyle::Lines;
};

/// Long-polls `GET /tasks/{id}?wait=N` until the task finished; the final task, or an error
/// (TaskFailed when it failed) carrying the task's error. Progress is drawn on `progress`.
ApiResult<nlohmann::json> wait_for_task(Api& api, const std::string& id, const WaitOptions& options,
                                        std::ostream& progress);

/// Prints an error in the CLI's words (as JSON under --json) on `err`; returns its exit code.
int report_error(const Invocation& invocation, const ApiError& error, std::ostream& err);

/// Runs an Action::Call invocation: sends its request, waits for a task it starts (unless
/// --no-wait), prints the answer (table, JSON or done message) on `out`, errors on `err`, and
/// returns the exit code.
int run_call(const Invocation& invocation, Api& api, const WaitOptions& options, std::ostream& out,
             std::ostream& err);

/// Runs `vm edit NAME` without flags: the VM's editable settings go through `edit` (given the
/// JSON text, returns the edited text or an error), then the changes are PATCHed.
int run_edit(const Invocation& invocation, Api& api, const std::function<ApiResult<std::string>(const std::string&)>& edit,
             std::ostream& out, std::ostream& err);

/// Edits text in $VISUAL, $EDITOR or vi, through a temporary file.
ApiResult<std::string> edit_in_editor(const std::string& text);

}  // namespace corral::cli
