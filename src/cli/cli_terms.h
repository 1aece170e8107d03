#pragma once

#include <string>

#include "cli/api.h"

namespace corral::cli {

/// A daemon error told in the CLI's words.
struct CliError {
    ApiError error;    ///< message rewritten; `field` cleared (the flag is in the message)
    std::string flag;  ///< the flag or argument the daemon's field was (--memory, SIZE), or empty
};

/// Rewrites an error from corrald in the words of the command line the user typed: API fields
/// become the flags or arguments that set them (memory_mib -> --memory), API routes become verbs
/// (GET /api/v1/images -> corral image list), byte counts in size messages become sizes (20G), and
/// a field that is no flag (the `action` of a missing VM) is not mentioned. A value corrald
/// refused (HTTP 400) is a usage error (exit 2).
CliError in_cli_terms(const ApiError& error, const HttpRequest& request);

/// The error as one line of JSON for --json: `{"error": {"message", "flag", "status", "exit_code"}}`.
std::string error_json(const std::string& message, const CliError& error, int exit_code);

}  // namespace corral::cli
