#pragma once

#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace corral::cli {

/// `corral help [VERB...]` is `corral [VERB...] --help`: the arguments with that rewrite done.
std::vector<std::string> rewrite_help_verb(const std::vector<std::string>& args);

/// Checks the verbs and flags of a command line before CLI11 parses it, so that a mistake is
/// named ("unknown verb 'strat'") with the nearest verb or flag, instead of CLI11's generic
/// "A subcommand is required". Returns the message (lines, no "corral: " prefix) or nothing.
std::optional<std::string> check_words(const CLI::App& root, const std::vector<std::string>& args);

/// Adds the short words people type for list, delete and show in every group: `ls`, `rm`, `info`.
void add_usual_aliases(CLI::App& root);

/// Gives every verb's --help its examples (where there are some) and the global flags, which
/// also work after the verb but CLI11 lists only at the top.
void add_examples_and_globals(CLI::App& root);

}  // namespace corral::cli
