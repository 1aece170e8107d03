#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace corral::cli {

/// Renders a daemon answer for people: tables for lists, `key: value` lines for single objects.
/// Missing fields show as `-`, so an older or newer daemon never breaks the output.
std::string render(View view, const nlohmann::json& answer);

/// A one-line summary of a task: `t-17 vm.start web1: failed: <error>`.
std::string describe_task(const nlohmann::json& task);

/// The text of a task's error (`error` may be a string or an object with `message`), empty if none.
std::string task_error(const nlohmann::json& task);

}  // namespace corral::cli
