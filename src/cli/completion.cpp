#include "cli/completion.h"

#include <functional>
#include <set>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

namespace corral::cli {

namespace {

/// A fish single-quoted string.
std::string fish_quote(const std::string& text) {
    std::string out = "'";
    for (char c : text) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

/// The names a verb's argument takes, by command ("vm start" -> VMs): a quoted fish command
/// substitution, run when completing (not when the script is loaded).
std::string names_for(const std::string& key) {
    if (key.rfind("vm ", 0) == 0 && key != "vm create" && key != "vm list") return "'(__corral_names vm)'";
    if (key == "console") return "'(__corral_names vm)'";
    if (key == "pool show" || key == "pool delete" || key == "volume list") return "'(__corral_names pool)'";
    if (key == "volume show" || key == "volume delete" || key == "volume resize" || key == "volume clone" ||
        key == "volume export")
        return "'(__corral_names volume)'";
    if (key == "image show" || key == "image delete") return "'(__corral_names image)'";
    if (key == "completion") return "'bash zsh fish'";
    return {};
}

}  // namespace

std::string zsh_completion(const std::string& bash_script) {
    // The bash function is renamed so that it does not replace this file's `_corral` once loaded.
    std::string script = bash_script;
    for (auto at = script.find("_corral"); at != std::string::npos; at = script.find("_corral", at + 12))
        script.replace(at, 7, "_corral_bash");
    return fmt::format(R"(#compdef corral
# zsh completion for corral: the bash completion (generated from corral's own parser) through zsh's
# bashcompinit. Install as _corral in a folder of $fpath, or load with: source <(corral completion zsh)
if ! (( $+functions[_corral_bash] )); then
# `complete` (bashcompinit's) registers through compdef: the completion system must be loaded.
(( $+functions[compdef] )) || {{ autoload -U compinit && compinit -i }}
autoload -U +X bashcompinit && bashcompinit
{}fi
# Autoloaded from $fpath, this runs inside a completion widget: complete now (next time the
# `complete` above has mapped corral to the bash function directly).
if (( ${{+compstate}} )); then
    _bash_complete -F _corral_bash "$@"
fi
)",
                       script);
}

std::string fish_completion(const CLI::App& root) {
    std::set<std::string> value_flags;
    std::string lines;
    std::function<void(const CLI::App&, const std::string&)> walk = [&](const CLI::App& app, const std::string& key) {
        const std::string when = fmt::format("-n {}", fish_quote(fmt::format("__corral_at '{}'", key)));
        for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
            lines += fmt::format("complete -c corral -f {} -a {} -d {}\n", when, fish_quote(sub->get_name()),
                                 fish_quote(sub->get_description()));
        }
        if (&app != &root)
            for (const CLI::Option* option : app.get_options())
                for (const auto& name : option->get_lnames()) {
                    const bool takes_value = option->get_expected_max() != 0;
                    if (takes_value) value_flags.insert("--" + name);
                    lines += fmt::format("complete -c corral -f {} -l {}{} -d {}\n", when, name, takes_value ? " -r" : "",
                                         fish_quote(option->get_description()));
                }
        if (const std::string names = names_for(key); !names.empty())
            lines += fmt::format("complete -c corral -f {} -a {}\n", when, names);
        for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
            walk(*sub, key.empty() ? sub->get_name() : key + " " + sub->get_name());
    };
    walk(root, "");
    // The global flags work after any verb.
    std::string globals;
    for (const CLI::Option* option : root.get_options())
        for (const auto& name : option->get_lnames()) {
            const bool takes_value = option->get_expected_max() != 0;
            if (takes_value) value_flags.insert("--" + name);
            const bool file = name == "socket" || name == "ca-cert" || name == "token-file";
            globals += fmt::format("complete -c corral {} -l {}{} -d {}\n", file ? "-F" : "-f", name,
                                   takes_value ? " -r" : "", fish_quote(option->get_description()));
        }
    std::string skip;
    for (const auto& flag : value_flags) skip += " " + fish_quote(flag);
    return fmt::format(R"(# fish completion for corral, generated from its own parser: corral completion fish | source
# (installed in <prefix>/share/fish/vendor_completions.d/corral.fish).

# The verbs typed so far (at most two: "vm create"), flags and their values left out.
function __corral_verbs
    set -l words (commandline -opc)
    set -e words[1]
    set -l verbs
    set -l skip 0
    for word in $words
        if test $skip = 1
            set skip 0
            continue
        end
        if contains -- $word{0}
            set skip 1
        else if not string match -q -- '-*' $word; and test (count $verbs) -lt 2
            set -a verbs $word
        end
    end
    string join ' ' -- $verbs
end

function __corral_at
    test (__corral_verbs) = "$argv[1]"
end

# Names from corrald (nothing when it does not answer).
function __corral_names
    switch $argv[1]
        case vm image pool
            corral $argv[1] list 2>/dev/null | awk 'NR>1{{print $1}}'
        case volume
            corral volume list 2>/dev/null | awk 'NR>1{{print $1"/"$2}}'
    end
end

{1}
{2})",
                       skip, globals, lines);
}

}  // namespace corral::cli
