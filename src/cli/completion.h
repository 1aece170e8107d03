#pragma once

#include <string>

namespace CLI {
class App;
}

namespace corral::cli {

/// zsh completion: the bash script (generated from the same command tree) run by zsh's
/// bashcompinit, as an autoloadable `_corral` for `site-functions` or to `source` directly.
std::string zsh_completion(const std::string& bash_script);

/// fish completion, generated from the command tree: verbs, flags (those that take a value marked
/// so), and the names of VMs, pools, volumes and images asked from corrald.
std::string fish_completion(const CLI::App& root);

}  // namespace corral::cli
