#include "cli/help.h"

#include <map>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "cli/suggest.h"

namespace corral::cli {

namespace {

/// The words a user may type for `app`'s verbs (names and aliases).
std::vector<std::string> verbs_of(const CLI::App& app) {
    std::vector<std::string> verbs;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
        verbs.push_back(sub->get_name());
        for (const auto& alias : sub->get_aliases()) verbs.push_back(alias);
    }
    return verbs;
}

std::string visible_verbs(const CLI::App& app) {
    std::string out;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
        out += (out.empty() ? "" : ", ") + sub->get_name();
    return out;
}

/// The flags that work at `app`: its own and those of the verbs above it (they fall through).
std::vector<std::string> flags_of(const CLI::App& app) {
    std::vector<std::string> flags;
    for (const CLI::App* at = &app; at != nullptr; at = at->get_parent())
        for (const CLI::Option* option : at->get_options())
            for (const auto& name : option->get_lnames()) flags.push_back("--" + name);
    return flags;
}

const CLI::Option* find_flag(const CLI::App& app, const std::string& flag) {
    for (const CLI::App* at = &app; at != nullptr; at = at->get_parent())
        if (const CLI::Option* option = at->get_option_no_throw(flag)) return option;
    return nullptr;
}

/// "vm create: " for a verb's mistakes; nothing at the top (the message starts with "corral: ").
std::string where(const CLI::App& app) {
    std::string command;
    for (const CLI::App* at = &app; at->get_parent() != nullptr; at = at->get_parent())
        command = at->get_name() + (command.empty() ? "" : " " + command);
    return command.empty() ? command : command + ": ";
}

std::string command_of(const CLI::App& app) {
    std::string command = app.get_name();
    for (const CLI::App* at = app.get_parent(); at != nullptr; at = at->get_parent())
        command = at->get_name() + " " + command;
    return command;
}

}  // namespace

std::vector<std::string> rewrite_help_verb(const std::vector<std::string>& args) {
    if (args.empty() || args.front() != "help") return args;
    std::vector<std::string> rewritten(args.begin() + 1, args.end());
    rewritten.push_back("--help");
    return rewritten;
}

std::optional<std::string> check_words(const CLI::App& root, const std::vector<std::string>& args) {
    const CLI::App* app = &root;
    bool asked_for_help = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const std::string& word = args[i];
        if (word == "--") break;
        if (word.size() > 1 && word[0] == '-') {
            // -m512 and bundled short flags are left to CLI11; a long flag is checked by its name.
            const bool long_flag = word.rfind("--", 0) == 0;
            if (!long_flag && word.size() > 2) continue;
            const std::string flag = word.substr(0, word.find('='));
            if (flag == "--help" || flag == "-h" || flag == "--version") asked_for_help = true;
            const CLI::Option* option = find_flag(*app, flag);
            if (option == nullptr) {
                const auto guess = long_flag ? nearest(flag, flags_of(*app)) : std::nullopt;
                return fmt::format("{}unknown flag {}{}\nRun '{} --help' for its flags.", where(*app), flag,
                                   guess ? fmt::format("; did you mean {}?", *guess) : "", command_of(*app));
            }
            if (option->get_expected_max() != 0 && word.find('=') == std::string::npos) ++i;  // its value
            continue;
        }
        const auto verbs = verbs_of(*app);
        if (verbs.empty()) continue;  // an argument (a name, a size): CLI11 checks those
        const CLI::App* sub = nullptr;
        for (const CLI::App* each : app->get_subcommands([](const CLI::App*) { return true; }))
            if (each->check_name(word)) sub = each;
        if (sub == nullptr) {
            const auto guess = nearest(word, verbs);
            return fmt::format("{}unknown verb '{}'{}\n{} verbs: {}\nRun '{} --help' for what they do.",
                               where(*app), word, guess ? fmt::format("; did you mean '{}'?", *guess) : "",
                               app == &root ? "corral's" : "Its", visible_verbs(*app), command_of(*app));
        }
        app = sub;
    }
    if (!asked_for_help && app->get_require_subcommand_min() > 0)
        return fmt::format("{}a verb is needed: {}\nRun '{} --help' for what they do.", where(*app),
                           visible_verbs(*app), command_of(*app));
    return std::nullopt;
}

void add_usual_aliases(CLI::App& root) {
    static const std::pair<const char*, const char*> k_aliases[] = {{"list", "ls"}, {"delete", "rm"}, {"show", "info"}};
    auto find = [](CLI::App* group, const char* word) -> CLI::App* {
        for (CLI::App* sub : group->get_subcommands([](CLI::App*) { return true; }))
            if (sub->check_name(word)) return sub;
        return nullptr;
    };
    for (CLI::App* group : root.get_subcommands([](CLI::App*) { return true; }))
        for (const auto& [verb, alias] : k_aliases)
            if (CLI::App* sub = find(group, verb); sub != nullptr && find(group, alias) == nullptr) sub->alias(alias);
}

void add_examples_and_globals(CLI::App& root) {
    static const std::map<std::string, std::vector<const char*>> k_examples = {
        {"corral",
         {"corral image prepare", "corral vm create web1 --image default --memory 1G", "corral vm start web1",
          "corral help vm create"}},
        {"corral vm", {"corral vm list", "corral vm create web1 --image default", "corral vm stop web1 --timeout 60"}},
        {"corral vm create",
         {"corral vm create web1 --image default", "corral vm create db --image default --cpus 2 --memory 2G",
          "corral vm create web2 --image default --disk data:ro --nic bridge=br0 --restart on-failure"}},
        {"corral vm start", {"corral vm start web1"}},
        {"corral vm stop", {"corral vm stop web1", "corral vm stop web1 --timeout 120", "corral vm stop web1 --force"}},
        {"corral vm delete", {"corral vm delete web1", "corral vm delete web1 --volumes"}},
        {"corral vm console", {"corral vm console web1", "corral vm console web1 --tail 50"}},
        {"corral vm edit", {"corral vm edit web1 --memory 2G", "corral vm edit web1"}},
        {"corral vm why-slow", {"corral vm why-slow web1", "corral vm why-slow web1 --json"}},
        {"corral vm balloon",
         {"corral vm balloon web1 512M", "corral vm balloon web1 --clear", "corral vm balloon web1"}},
        {"corral vm screenshot", {"corral vm screenshot desk desk.png", "corral vm screenshot desk desk.png --force"}},
        {"corral vm vnc", {"corral vm vnc desk", "corral vm vnc desk --listen 127.0.0.1:5911 --view-only"}},
        {"corral vm migrate",
         {"CORRAL_DEST_TOKEN=... corral vm migrate web1 --to https://h2:8443 --dest-fingerprint AB:CD:...",
          "corral vm migrate web1 --to https://h2:8443 --dest-token-file h2.token --dest-ca-cert ca.pem --downtime-ms "
          "100",
          "corral vm migrate web1 --to https://h2:8443 --dest-fingerprint AB:CD:... --bandwidth-mib 50",
          "corral vm migrate web1 --to https://h2:8443 --dest-fingerprint AB:CD:...   # disk on a local pool: copied"}},
        {"corral volume", {"corral volume list", "corral volume create data --size 10G"}},
        {"corral volume create",
         {"corral volume create data --size 10G", "corral volume create fast/scratch --size 1G --format raw"}},
        {"corral volume clone",
         {"corral volume clone web1-root web1-test", "corral volume clone web1-root web1-copy --full"}},
        {"corral volume resize", {"corral volume resize data 20G"}},
        {"corral volume import", {"corral volume import disk /srv/images/disk.qcow2"}},
        {"corral volume export", {"corral volume export data /srv/backup/data.qcow2"}},
        {"corral pool create", {"corral pool create fast --path /srv/fast"}},
        {"corral image prepare", {"corral image prepare", "corral image prepare bookworm"}},
        {"corral task wait", {"corral task wait t-12", "corral task wait t-12 --timeout 600"}},
        {"corral alarm", {"corral alarm list", "corral alarm create busy --metric vm.cpu --above 0.8 --for 60s"}},
        {"corral alarm create",
         {"corral alarm create busy --metric vm.cpu --above 0.8 --for 60s",
          "corral alarm create web1-waits --metric vm.run_delay --vm web1 --above 0.1 --for 5m",
          "corral alarm create full --metric host.memory --above 60e9 --webhook https://hooks.example.com/corral"}},
        {"corral backup verify",
         {"corral backup verify web1-20261206T210000Z-3f9c2a",
          "corral backup verify web1-20261206T210000Z-3f9c2a --boot",
          "corral backup verify web1-20261206T210000Z-3f9c2a --boot --timeout 300 --ready 'login: $'"}},
        {"corral backup schedule create",
         {"corral backup schedule create web1 --daily 02:00 --keep-daily 7",
          "corral backup schedule create db --daily 03:30 --weekly sunday --repo main --keep-weekly 4 --verify-boot"}},
        {"corral backup schedule", {"corral backup schedule list", "corral backup schedule run web1-3f9c2a"}},
    };
    const std::string globals =
        "Global flags (before or after the verb; 'corral --help' says more):\n"
        "  --json  --no-wait  --raw  --socket PATH  --remote https://HOST:PORT  --token-file FILE\n"
        "  --ca-cert FILE  --fingerprint SHA256  -h,--help";
    auto walk = [&](auto&& self, CLI::App& app) -> void {
        const std::string command = command_of(app);
        std::string footer;
        if (auto found = k_examples.find(command); found != k_examples.end()) {
            footer += "\nExamples:\n";
            for (const char* example : found->second) footer += fmt::format("  {}\n", example);
        }
        if (&app != &root) footer += "\n" + globals + "\n";
        if (!footer.empty()) app.footer(footer + app.get_footer());
        for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) self(self, *sub);
    };
    walk(walk, root);
}

}  // namespace corral::cli
