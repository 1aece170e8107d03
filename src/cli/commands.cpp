#include "cli/commands.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <sstream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "base/api_path.h"
#include "base/version.h"
#include "cli/alarm_commands.h"
#include "cli/backup_commands.h"
#include "cli/capacity_plan.h"
#include "cli/completion.h"
#include "cli/help.h"
#include "cli/network_commands.h"
#include "cli/security_group_commands.h"
#include "cli/size.h"

namespace corral::cli {

const char* const k_exit_codes_help =
    "Exit codes:\n"
    "  0  success\n"
    "  1  corrald refused the request or the operation failed\n"
    "  2  usage error: a bad command line, or a value corrald refused (--cpus 99, --memory 0)\n"
    "  3  cannot reach corrald (its socket is missing or refuses connections; a remote one is down or its\n"
    "     TLS certificate cannot be verified; corral events: corrald went away)\n"
    "  4  a task corral waited for failed (or was cancelled)\n";

namespace {

/// Percent-encodes one path segment or query value (names are restricted, but be safe).
std::string encode(const std::string& text) {
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            out += static_cast<char>(c);
        else
            out += fmt::format("%{:02X}", c);
    }
    return out;
}

std::string path(const std::string& collection) { return api_path("/" + collection); }
std::string path(const std::string& collection, const std::string& name) {
    return path(collection) + "/" + encode(name);
}
/// A VM's snapshots: /vms/NAME/snapshots.
std::string snapshots_of(const std::string& vm) { return path("vms", vm) + "/snapshots"; }

/// A volume reference: `POOL/NAME`, or `NAME` in the default pool.
struct VolumeRef {
    std::string pool;
    std::string name;
};

VolumeRef split_volume(const std::string& text) {
    const auto slash = text.find('/');
    if (slash == std::string::npos) return {"default", text};
    return {text.substr(0, slash), text.substr(slash + 1)};
}

std::string check_volume_ref(const std::string& text) {
    const auto slash = text.find('/');
    if (text.empty() || (slash != std::string::npos &&
                         (slash == 0 || slash + 1 == text.size() || text.find('/', slash + 1) != std::string::npos)))
        return fmt::format("'{}' is not a volume: expected POOL/VOLUME (or VOLUME in the default pool)", text);
    return {};
}

/// `--disk POOL/VOLUME[:ro]` -> {"pool", "volume", "readonly"}.
nlohmann::json disk_json(const std::string& text) {
    std::string ref = text;
    bool readonly = false;
    if (const auto colon = ref.rfind(':'); colon != std::string::npos) {
        readonly = ref.substr(colon + 1) == "ro";
        ref = ref.substr(0, colon);
    }
    const VolumeRef volume = split_volume(ref);
    return {{"pool", volume.pool}, {"volume", volume.name}, {"readonly", readonly}};
}

std::string check_disk(const std::string& text) {
    std::string ref = text;
    if (const auto colon = ref.rfind(':'); colon != std::string::npos) {
        const std::string mode = ref.substr(colon + 1);
        if (mode != "ro" && mode != "rw")
            return fmt::format("'{}': the disk mode after ':' must be ro or rw", text);
        ref = ref.substr(0, colon);
    }
    return check_volume_ref(ref);
}

/// `--nic bridge=br0[,mac=...]`, `--nic tap=tap0[,mac=...]` or `--nic br0` -> {"bridge"|"tap", "mac"}.
nlohmann::json nic_json(const std::string& text) {
    nlohmann::json nic = nlohmann::json::object();
    std::stringstream parts(text);
    std::string part;
    while (std::getline(parts, part, ',')) {
        const auto eq = part.find('=');
        if (eq == std::string::npos) {
            nic["bridge"] = part;
        } else if (part.substr(0, eq) == "groups") {
            // groups=web+ssh: '+' because ',' separates the NIC's settings.
            nic["groups"] = nlohmann::json::array();
            std::stringstream names(part.substr(eq + 1));
            for (std::string name; std::getline(names, name, '+');) nic["groups"].push_back(name);
        } else {
            nic[part.substr(0, eq)] = part.substr(eq + 1);
        }
    }
    return nic;
}

std::string check_nic(const std::string& text) {
    if (text == "none") return {};  // no NIC at all (not even the default network's)
    std::stringstream parts(text);
    std::string part;
    int backends = 0;
    bool first = true;
    while (std::getline(parts, part, ',')) {
        const auto eq = part.find('=');
        const std::string key = eq == std::string::npos ? (first ? "bridge" : part) : part.substr(0, eq);
        const std::string value = eq == std::string::npos ? part : part.substr(eq + 1);
        first = false;
        if (key == "bridge" || key == "tap" || key == "network")
            ++backends;
        else if (key != "mac" && key != "groups")
            return fmt::format("'{}': unknown NIC setting '{}' (expected network=NAME, bridge=NAME or tap=NAME, and "
                               "mac=MAC, groups=G1+G2)",
                               text, key);
        if (value.empty()) return fmt::format("'{}': {} needs a value", text, key);
    }
    if (backends != 1)
        return fmt::format("'{}': a NIC needs exactly one of network=NAME, bridge=NAME or tap=NAME", text);
    return {};
}

CLI::Validator validator(std::function<std::string(const std::string&)> check, std::string name) {
    return CLI::Validator(std::move(check), "", std::move(name));
}

/// "1024x768" as (1024, 768); nullopt when it is not two whole numbers joined by 'x'.
std::optional<std::pair<int, int>> parse_display(const std::string& text) {
    const auto x = text.find('x');
    if (x == std::string::npos) return std::nullopt;
    int width = 0;
    int height = 0;
    const char* end = text.data() + text.size();
    auto [w_end, w_error] = std::from_chars(text.data(), text.data() + x, width);
    auto [h_end, h_error] = std::from_chars(text.data() + x + 1, end, height);
    if (x == 0 || w_error != std::errc() || w_end != text.data() + x || x + 1 == text.size() ||
        h_error != std::errc() || h_end != end || width <= 0 || height <= 0)
        return std::nullopt;
    return std::pair{width, height};
}

const CLI::Validator k_size = validator(
    [](const std::string& text) {
        auto bytes = parse_size(text);
        return bytes ? std::string() : bytes.error().message();
    },
    "SIZE");
const CLI::Validator k_memory = validator(
    [](const std::string& text) {
        auto mib = parse_size_mib(text);
        return mib ? std::string() : mib.error().message();
    },
    "SIZE");
/// A memory size, or 0 (a limit removed).
const CLI::Validator k_memory_or_zero = validator(
    [](const std::string& text) {
        if (text == "0") return std::string();
        auto mib = parse_size_mib(text);
        return mib ? std::string() : mib.error().message();
    },
    "SIZE");
/// A rate in bytes a second: "50M" (a size), or 0.
const CLI::Validator k_byte_rate = validator(
    [](const std::string& text) {
        auto bytes = parse_size(text);
        return bytes ? std::string() : bytes.error().message();
    },
    "SIZE");
/// A whole percentage: "50" or "50%".
const CLI::Validator k_percent = validator(
    [](const std::string& text) {
        const std::string_view digits = text.ends_with('%') ? std::string_view(text).substr(0, text.size() - 1) : text;
        int value = 0;
        auto [at, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
        if (digits.empty() || error != std::errc() || at != digits.data() + digits.size() || value < 0)
            return fmt::format("'{}' is not a percentage: give a whole number such as 50 or 50% (of one host CPU)", text);
        return std::string();
    },
    "PERCENT");
/// A whole number from `low` up, in the CLI's words (CLI11's own range check prints float bounds).
/// A display size "1024x768" (the daemon checks the range) or "none".
const CLI::Validator k_display = validator(
    [](const std::string& text) {
        if (text == "none" || parse_display(text)) return std::string();
        return fmt::format("'{}' is not a display size: give WIDTHxHEIGHT such as 1024x768, or none", text);
    },
    "WxH|none");

CLI::Validator at_least(int low, const char* what) {
    return validator(
        [low, what](const std::string& text) {
            int value = 0;
            const char* end = text.data() + text.size();
            auto [at, error] = std::from_chars(text.data(), end, value);
            if (error != std::errc() || at != end || value < low)
                return fmt::format("'{}' is not {}: give a whole number from {} up", text, what, low);
            return std::string();
        },
        "N");
}

const CLI::Validator k_volume_ref = validator(check_volume_ref, "POOL/VOLUME");
const CLI::Validator k_disk = validator(check_disk, "POOL/VOLUME[:ro]");
const CLI::Validator k_nic = validator(check_nic, "network=NET[,groups=G1+G2]|bridge=BR[,mac=MAC]");

/// The options a VM's settings take, shared by `vm create` and `vm edit`.
struct VmSettings {
    std::optional<int> cpus;
    std::string memory;
    std::vector<std::string> disks;
    std::vector<std::string> nics;
    std::string engine;
    std::string restart;
    std::optional<std::string> cmdline;
    std::string image;
    // limits (docs/api.md "Limits")
    std::optional<int> cpu_weight;
    std::string cpu_max;
    std::string memory_overhead;
    std::optional<int> io_weight;
    std::optional<std::string> host_cpus;
    std::optional<std::string> vcpu_pins;
    std::string disk_bps;
    std::optional<uint64_t> disk_iops;
    std::string nic_bps;
    std::string display;

    void add_common(CLI::App* app) {
        app->add_option("--cpus,--vcpus", cpus, "virtual CPUs (default 1)")->check(at_least(1, "a number of CPUs"))->type_name("N");
        app->add_option("--memory,-m", memory, "memory, e.g. 512M or 1G (a bare number is MiB; default 512M)")
            ->check(k_memory)
            ->type_name("SIZE");
        app->add_option("--nic,--net", nics,
                        "a NIC: network=NET (a managed network), bridge=BR or tap=TAP, optional ,mac=MAC and "
                        ",groups=G1+G2 (security groups, managed networks only) (repeatable; default: one on the "
                        "default network; 'none' for no NIC)")
            ->check(k_nic)
            ->type_name("network=NET[,groups=G1+G2]|bridge=BR[,mac=MAC]");
        app->add_option("--restart", restart, "restart policy")->check(CLI::IsMember({"no", "on-failure", "always"}));
        app->add_option("--cmdline", cmdline, "extra kernel arguments");
        app->add_option("--display", display,
                        "a graphical display of this size, e.g. 1024x768 (640x480 to 3840x2160), with keyboard, pointer "
                        "and VNC (vm screenshot, vm vnc); 'none' removes it (default: none)")
            ->check(k_display)
            ->type_name("WxH|none");
        app->add_option("--cpu-weight", cpu_weight, "the VM's share of contended CPU, relative (100 is the default; 0 resets)")
            ->check(at_least(0, "a CPU weight"))
            ->type_name("N")
            ->group("Limits (change live on a running VM)");
        app->add_option("--cpu-max", cpu_max, "a CPU cap in percent of one host CPU, e.g. 50% (0 removes it)")
            ->check(k_percent)
            ->type_name("PERCENT")
            ->group("Limits (change live on a running VM)");
        app->add_option("--memory-overhead", memory_overhead,
                        "cap the VM's memory at its --memory plus this much for the monitor, e.g. 256M (0 removes it)")
            ->check(k_memory_or_zero)
            ->type_name("SIZE")
            ->group("Limits (change live on a running VM)");
        app->add_option("--io-weight", io_weight, "the VM's share of contended disk time, relative (100 is the default; 0 resets)")
            ->check(at_least(0, "an I/O weight"))
            ->type_name("N")
            ->group("Limits (change live on a running VM)");
        app->add_option("--host-cpus", host_cpus, "pin the VM to these host CPUs, e.g. 0-1,3 ('' for all)")
            ->type_name("LIST")
            ->group("Limits (change live on a running VM)");
        app->add_option("--vcpu-pins", vcpu_pins, "pin each vCPU to one host CPU, in vCPU order, e.g. 2,3 ('' for none)")
            ->type_name("CPU,...")
            ->group("Limits (change live on a running VM)");
        app->add_option("--disk-bps", disk_bps, "limit each disk to this many bytes a second, e.g. 50M (0 removes it)")
            ->check(k_byte_rate)
            ->type_name("SIZE")
            ->group("Limits (change live on a running VM)");
        app->add_option("--disk-iops", disk_iops, "limit each disk to this many requests a second (0 removes it)")
            ->type_name("N")
            ->group("Limits (change live on a running VM)");
        app->add_option("--nic-bps", nic_bps,
                        "limit each NIC to this many bytes a second each way, e.g. 10M (0 removes it)")
            ->check(k_byte_rate)
            ->type_name("SIZE")
            ->group("Limits (change live on a running VM)");
    }

    /// The JSON body with only the settings given on the command line.
    nlohmann::json body() const {
        nlohmann::json body = nlohmann::json::object();
        if (!image.empty()) body["image"] = image;
        if (cpus) body["vcpus"] = *cpus;
        if (!memory.empty()) body["memory_mib"] = *parse_size_mib(memory);
        if (!disks.empty()) {
            body["disks"] = nlohmann::json::array();
            for (const auto& disk : disks) body["disks"].push_back(disk_json(disk));
        }
        if (!nics.empty()) {
            body["nics"] = nlohmann::json::array();
            for (const auto& nic : nics)
                if (nic != "none") body["nics"].push_back(nic_json(nic));
        }
        if (!engine.empty()) body["engine"] = engine;
        if (!restart.empty()) body["restart_policy"] = restart;
        if (cmdline) body["cmdline"] = *cmdline;
        if (display == "none") {
            body["display"] = nullptr;
        } else if (auto size = parse_display(display)) {
            body["display"] = {{"width", size->first}, {"height", size->second}};
        }
        nlohmann::json limits = nlohmann::json::object();
        if (cpu_weight) limits["cpu_weight"] = *cpu_weight;
        if (!cpu_max.empty()) limits["cpu_max_percent"] = std::stoi(cpu_max);  // k_percent checked it
        if (!memory_overhead.empty()) limits["memory_overhead_mib"] = memory_overhead == "0" ? uint64_t{0} : *parse_size_mib(memory_overhead);
        if (io_weight) limits["io_weight"] = *io_weight;
        if (host_cpus) limits["host_cpus"] = *host_cpus;
        if (vcpu_pins) limits["vcpu_pins"] = *vcpu_pins;
        if (!disk_bps.empty())
            limits["disk_bytes_per_s"] = *parse_size(disk_bps);  // k_byte_rate checked it
        if (disk_iops)
            limits["disk_iops"] = *disk_iops;
        if (!nic_bps.empty())
            limits["nic_bytes_per_s"] = *parse_size(nic_bps);
        if (!limits.empty()) body["limits"] = limits;
        return body;
    }
};

/// A small text file given on the command line (a CA certificate), whole; a usage error when unreadable.
std::string read_small_file(const std::string& flag, const std::string& path) {
    std::ifstream file(path);
    if (!file)
        throw CLI::ValidationError(fmt::format("{} {}: cannot read it: {}", flag, path, std::strerror(errno)));
    std::string text((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
    if (text.size() > 64 * 1024)
        throw CLI::ValidationError(fmt::format("{} {}: larger than 64 KiB", flag, path));
    return text;
}

/// `vm migrate`'s token for the destination: the first line of --dest-token-file, else
/// $CORRAL_DEST_TOKEN (neither shows in `ps`).
std::string read_destination_token(const std::string& token_file) {
    if (!token_file.empty()) {
        std::string text = read_small_file("--dest-token-file", token_file);
        std::string line = text.substr(0, text.find('\n'));
        const auto first = line.find_first_not_of(" \t\r");
        const auto last = line.find_last_not_of(" \t\r");
        if (first == std::string::npos)
            throw CLI::ValidationError(
                fmt::format("--dest-token-file {}: the file is empty; it should hold the "
                            "destination's token on its first line",
                            token_file));
        return line.substr(first, last - first + 1);
    }
    const char* env = std::getenv("CORRAL_DEST_TOKEN");
    if (env == nullptr || *env == '\0')
        throw CLI::ValidationError(
            "vm migrate needs the destination's API token: --dest-token-file FILE or "
            "CORRAL_DEST_TOKEN (make one there with 'corral token create NAME')");
    return env;
}

/// Everything the parsed options are stored in (CLI11 binds to these).
struct Bindings {
    Invocation inv;
    bool no_wait = false;
    std::string socket;
    std::string remote;
    std::string token;
    std::string token_file;
    std::string ca_cert;
    std::string fingerprint;
    // vm migrate: the destination corrald (the global --token-file etc. are the source's)
    std::string dest_url;
    std::string dest_token_file;
    std::string dest_fingerprint;
    std::string dest_ca_cert;
    std::optional<int> downtime_ms;
    std::optional<int> bandwidth_mib;
    std::string name;
    std::string second;
    std::string description;
    VmSettings vm;
    std::optional<int> vcpus_per_cpu;
    std::optional<int> memory_percent;
    std::string plan_shape;
    std::vector<std::string> what_ifs;
    int stop_timeout = -1;
    bool force = false;
    bool with_volumes = false;
    bool clear_balloon = false;  // vm balloon --clear
    std::optional<int> tail;
    std::string pool_filter;
    std::string pool_path;
    std::string pool_driver = "dir";
    std::string size;
    std::string format;
    bool full_copy = false;
    bool disk_only = false;
    std::string from_snapshot;
    int wait_timeout = 0;
    std::string shell;
};

std::string quote_words(const std::vector<std::string>& words) {
    std::string out;
    for (const auto& word : words) {
        if (!out.empty()) out += ' ';
        out += word;
    }
    return out;
}

/// Writes a bash completion script from the command tree, so it never drifts from the parser.
std::string bash_completion(const CLI::App& root) {
    std::set<std::string> value_options;
    std::string cases;
    std::function<void(const CLI::App&, const std::string&)> walk = [&](const CLI::App& app, const std::string& key) {
        std::vector<std::string> words;
        for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
            words.push_back(sub->get_name());
        for (const CLI::Option* option : app.get_options()) {
            for (const auto& name : option->get_lnames()) {
                words.push_back("--" + name);
                if (option->get_expected_max() != 0) value_options.insert("--" + name);
            }
            for (const auto& name : option->get_snames()) {
                if (option->get_expected_max() != 0) value_options.insert("-" + name);
            }
        }
        // Global options work after any verb.
        if (&app != &root)
            words.insert(words.end(),
                         {"--socket", "--remote", "--token", "--token-file", "--ca-cert", "--fingerprint", "--json",
                          "--raw", "--no-wait"});
        std::string dynamic;
        if (key.rfind(" vm ", 0) == 0 && key != " vm create" && key != " vm list")
            dynamic = " $(corral vm list 2>/dev/null | awk 'NR>1{print $1}')";
        else if (key == " pool show" || key == " pool delete" || key == " volume list")
            dynamic = " $(corral pool list 2>/dev/null | awk 'NR>1{print $1}')";
        else if (key == " volume show" || key == " volume delete" || key == " volume resize" ||
                 key == " volume clone" || key == " volume export")
            dynamic = " $(corral volume list 2>/dev/null | awk 'NR>1{print $1\"/\"$2}')";
        else if (key == " image show" || key == " image delete")
            dynamic = " $(corral image list 2>/dev/null | awk 'NR>1{print $1}')";
        cases += fmt::format("        \"{}\") opts=\"{}\"{} ;;\n", key, quote_words(words),
                             dynamic.empty() ? "" : "; opts=\"$opts" + dynamic + "\"");
        for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
            walk(*sub, key + " " + sub->get_name());
    };
    walk(root, "");
    std::string value_pattern;
    for (const auto& option : value_options) value_pattern += (value_pattern.empty() ? "" : "|") + option;
    return fmt::format(R"(# bash completion for corral; load with: source <(corral completion bash)
_corral() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    case "$prev" in
        {0}) COMPREPLY=(); [[ "$prev" == --socket || "$prev" == --ca-cert || "$prev" == --token-file ]] && COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    local key="" i word skip=0 depth=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if ((skip)); then skip=0; continue; fi
        case "$word" in
            {0}) skip=1 ;;
            -*) ;;
            *) if ((depth < 2)); then key="$key $word"; depth=$((depth + 1)); fi ;;
        esac
    done
    local opts=""
    case "$key" in
{1}    esac
    COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}}
complete -F _corral corral
)",
                       value_pattern, cases);
}

}  // namespace

void Invocation::set_call(std::string method, std::string target, View view_as, nlohmann::json body, std::string about,
                          std::string done) {
    action = Action::Call;
    request = HttpRequest{std::move(method), std::move(target), std::nullopt};
    if (!body.is_null())
        request.body = std::move(body);
    view = view_as;
    subject = std::move(about);
    done_message = std::move(done);
}

ParseOutcome parse_command_line(const std::vector<std::string>& given_args) {
    const std::vector<std::string> args = rewrite_help_verb(given_args);
    Bindings b;
    CLI::App app{"corral: manage virtual machines, storage and tasks through corrald's API", "corral"};
    app.footer(std::string("\n") + k_exit_codes_help +
               "\nThe socket is --socket PATH, else $CORRAL_SOCKET, else /var/lib/corral/corrald.sock (root)\n"
               "or ~/.local/share/corral/corrald.sock. A remote corrald: --remote https://HOST:PORT --token-file FILE\n"
               "(or $CORRAL_REMOTE, $CORRAL_TOKEN) with --fingerprint SHA256 or --ca-cert FILE. See docs/cli.md.\n");
    app.failure_message([](const CLI::App* root, const CLI::Error& e) {
        // Point at the deepest verb given, so its --help is the one that helps.
        std::string command = root->get_name();
        const CLI::App* app = root;
        while (app != nullptr) {
            const auto parsed = app->get_subcommands();
            app = parsed.empty() ? nullptr : parsed.front();
            if (app != nullptr) command += " " + app->get_name();
        }
        return fmt::format("corral: {}\nRun '{} --help' for usage.\n", e.what(), command);
    });
    app.fallthrough();  // global options may follow the verb: `corral vm list --json`
    app.require_subcommand(1);
    app.set_version_flag("--version", fmt::format("corral {}", k_version));
    app.add_option("--socket", b.socket, "corrald's unix socket")->type_name("PATH");
    app.add_option("--remote", b.remote, "a remote corrald's TLS listener (default $CORRAL_REMOTE)")
        ->type_name("https://HOST:PORT");
    app.add_option("--token", b.token,
                   "bearer token for --remote (default $CORRAL_TOKEN); other users see it in ps: prefer --token-file")
        ->type_name("TOKEN");
    app.add_option("--token-file", b.token_file, "read the bearer token for --remote from this file")
        ->type_name("FILE");
    app.add_option("--ca-cert", b.ca_cert, "trust --remote's certificate if this CA signed it (default $CORRAL_CA_CERT)")
        ->type_name("FILE");
    app.add_option("--fingerprint", b.fingerprint,
                   "trust --remote's certificate if its SHA-256 is this (corrald logs it; default $CORRAL_FINGERPRINT)")
        ->type_name("SHA256");
    app.add_flag("--json", b.inv.json, "print the daemon's JSON instead of tables");
    app.add_flag("--raw", b.inv.raw,
                 "print guest console output as it is, terminal control sequences included (default: escaped)");
    app.add_flag("--no-wait", b.no_wait, "don't wait for tasks: print the task id and return");

    // `body` is JSON null for "no body" rather than a std::optional<json> defaulted to nullopt:
    // GCC 12 at -O2/-O3 inlines the destructor of that disengaged temporary into each caller and
    // warns -Wmaybe-uninitialized about the json inside it (GCC bug 80635, std::optional's
    // payload), which -Werror turns into a failed Release build. No request sends a null body.
    auto call = [&](std::string method, std::string target, View view, std::string subject = {},
                    nlohmann::json body = nullptr, std::string done = {}) {
        b.inv.action = Action::Call;
        b.inv.request = HttpRequest{std::move(method), std::move(target), std::nullopt};
        if (!body.is_null()) b.inv.request.body = std::move(body);
        b.inv.view = view;
        b.inv.subject = std::move(subject);
        b.inv.done_message = std::move(done);
    };
    auto name_arg = [&](CLI::App* cmd, const char* what) {
        // Usage lines name the argument for what it is: "the VM's name" -> VM, "the task id" -> TASK_ID.
        std::string shown = what;
        for (const char* noise : {"the ", "'s name"})
            if (const auto at = shown.find(noise); at != std::string::npos) shown.erase(at, std::string(noise).size());
        for (char& c : shown) c = c == ' ' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        cmd->add_option(shown, b.name, what)->required()->type_name("");
    };

    // vm
    // `corral vm console NAME`, and `corral console NAME` for short (what a virsh user types).
    auto add_console = [&](CLI::App* parent) {
        CLI::App* console = parent->add_subcommand("console", "attach to a VM's serial console (Ctrl-] detaches)");
        name_arg(console, "the VM");
        console->add_option("--tail", b.tail, "print the last N console lines and exit")
            ->check(at_least(1, "a number of lines"))
            ->type_name("N");
        console->callback([&] {
            if (b.tail) {
                call("GET", fmt::format("{}/console?tail={}", path("vms", b.name), *b.tail), View::None, b.name);
                return;
            }
            b.inv.action = Action::Console;
            b.inv.request = HttpRequest{"GET", path("vms", b.name) + "/console", std::nullopt};
            b.inv.subject = b.name;
        });
    };
    add_console(&app);
    CLI::App* vm = app.add_subcommand("vm", "virtual machines")->require_subcommand(1);
    {
        CLI::App* create = vm->add_subcommand("create", "create a VM (stopped)");
        name_arg(create, "the VM's name");
        b.vm.add_common(create);
        create->add_option("--image", b.vm.image, "the image to boot, required (the VM gets a linked clone of its root volume)")
            ->type_name("IMAGE");
        create->add_option("--disk", b.vm.disks, "attach an existing volume POOL/VOLUME[:ro] (repeatable)")->check(k_disk)->type_name("POOL/VOLUME[:ro]");
        create->add_option("--engine", b.vm.engine, "native or emulated (default: the host's)")
            ->check(CLI::IsMember({"native", "emulated"}));
        create->callback([&] {
            // Only an image gives a VM a kernel to boot: without one `vm start` could only fail.
            if (b.vm.image.empty())
                throw CLI::ValidationError(fmt::format(
                    "{} needs --image IMAGE: the image gives it a kernel and its root disk (--disk only adds "
                    "disks). 'corral image list' shows the images; 'corral image prepare' makes the one called default",
                    b.name));
            nlohmann::json body = b.vm.body();
            body["name"] = b.name;
            call("POST", path("vms"), View::Vm, b.name, body, fmt::format("created {}", b.name));
        });

        vm->add_subcommand("list", "list VMs")->callback([&] { call("GET", path("vms"), View::VmTable); });

        CLI::App* show = vm->add_subcommand("show", "show a VM's settings and state");
        name_arg(show, "the VM");
        show->callback([&] { call("GET", path("vms", b.name), View::Vm, b.name); });

        struct Simple {
            const char* verb;
            const char* action;
            const char* help;
            const char* done;
        };
        static constexpr Simple k_actions[] = {
            {"start", "start", "start a VM", "{} started"},
            {"kill", "kill", "stop a VM at once (like pulling the plug)", "{} killed"},
            {"pause", "pause", "pause a running VM", "{} paused"},
            {"resume", "resume", "resume a paused VM", "{} resumed"},
            {"reset", "reset", "reset a VM at once, like its reset button (the guest is not asked)", "{} reset"},
        };
        for (const Simple& simple : k_actions) {
            CLI::App* cmd = vm->add_subcommand(simple.verb, simple.help);
            name_arg(cmd, "the VM");
            cmd->callback([&b, &call, simple] {
                call("PUT", path("vms", b.name) + "/state", View::None, b.name,
                     nlohmann::json{{"action", simple.action}}, fmt::format(fmt::runtime(simple.done), b.name));
            });
        }

        CLI::App* stop = vm->add_subcommand("stop", "ask a VM's guest to shut down; kill it after --timeout");
        name_arg(stop, "the VM");
        stop->add_option("--timeout,-t", b.stop_timeout, "seconds to wait for the guest before killing it (default 30)")
            ->check(at_least(0, "a number of seconds"))
            ->type_name("SECONDS");
        stop->add_flag("--force,-f", b.force, "kill at once (same as vm kill)");
        stop->callback([&] {
            nlohmann::json body{{"action", b.force ? "kill" : "stop"}};
            if (!b.force && b.stop_timeout >= 0) body["timeout"] = b.stop_timeout;
            call("PUT", path("vms", b.name) + "/state", View::None, b.name, body,
                 b.name + (b.force ? " killed" : " stopped"));
            // The task says what happened: "web1 shut down" or "web1 killed after the timeout".
            b.inv.done_from_task = !b.force;
            if (!b.force) b.inv.countdown_seconds = b.stop_timeout >= 0 ? b.stop_timeout : 30;
        });

        CLI::App* reboot = vm->add_subcommand(
            "reboot", "ask a VM's guest to shut down, then start the VM again; reset it after --timeout");
        name_arg(reboot, "the VM");
        reboot->add_option("--timeout,-t", b.stop_timeout, "seconds to wait for the guest before resetting it (default 30)")
            ->check(at_least(1, "a number of seconds"))
            ->type_name("SECONDS");
        reboot->callback([&] {
            nlohmann::json body{{"action", "reboot"}};
            if (b.stop_timeout >= 0) body["timeout"] = b.stop_timeout;
            call("PUT", path("vms", b.name) + "/state", View::None, b.name, body, b.name + " rebooted");
            // The task says what happened: "web1 rebooted (the guest shut down)" or "web1 reset (...)".
            b.inv.done_from_task = true;
            b.inv.countdown_seconds = b.stop_timeout >= 0 ? b.stop_timeout : 30;
            b.inv.countdown_ending = "reset";
        });

        CLI::App* del = vm->add_subcommand("delete", "delete a stopped VM");
        name_arg(del, "the VM");
        del->add_flag("--volumes", b.with_volumes, "also delete its disks (those no other VM uses)");
        del->callback([&] {
            call("DELETE", path("vms", b.name) + (b.with_volumes ? "?volumes=true" : ""), View::Deleted, b.name);
        });

        CLI::App* inflate = vm->add_subcommand(
            "balloon",
            "set the memory a VM's guest keeps (its balloon takes the rest back), kept for every start, or show it");
        name_arg(inflate, "the VM");
        auto* size = inflate
                         ->add_option("SIZE", b.second,
                                      "the memory the guest keeps, e.g. 128M (up to the VM's memory: the "
                                      "balloon deflated); applied now if the VM runs and at every start; "
                                      "without it, show the balloon")
                         ->check(k_memory)
                         ->type_name("");
        inflate->add_flag("--clear", b.clear_balloon, "remove the kept target: the guest gets all its memory back")
            ->excludes(size);
        inflate->callback([&] {
            if (b.clear_balloon)
                return call("PUT", path("vms", b.name) + "/balloon", View::Balloon, b.name,
                            nlohmann::json{{"clear", true}});
            if (b.second.empty())
                return call("GET", path("vms", b.name) + "/balloon", View::Balloon, b.name);
            call("PUT", path("vms", b.name) + "/balloon", View::Balloon, b.name,
                 nlohmann::json{{"target_mib", *parse_size_mib(b.second)}});
        });

        add_console(vm);

        CLI::App* migrate = vm->add_subcommand(
            "migrate",
            "move a running VM live to another corrald (a disk on a pool both hosts share stays; one on a pool of "
            "the same name there, on another folder, is copied meanwhile: emulated engine)");
        name_arg(migrate, "the VM");
        migrate->add_option("--to", b.dest_url, "the destination corrald's TLS API, https://HOST[:PORT]")
            ->required()
            ->type_name("URL");
        migrate
            ->add_option("--dest-token-file", b.dest_token_file,
                         "a file with the destination's API token (else $CORRAL_DEST_TOKEN)")
            ->type_name("FILE");
        migrate
            ->add_option("--dest-fingerprint", b.dest_fingerprint,
                         "the SHA-256 fingerprint the destination's certificate must have")
            ->type_name("SHA256");
        migrate
            ->add_option("--dest-ca-cert", b.dest_ca_cert, "verify the destination's certificate against this CA file")
            ->type_name("FILE");
        migrate->add_option("--downtime-ms", b.downtime_ms, "the longest pause the guest may see (default 300)")
            ->check(CLI::Range(1, 60000))
            ->type_name("MS");
        migrate
            ->add_option("--bandwidth-mib", b.bandwidth_mib,
                         "the stream's rate limit in MiB/s, and each disk copy's (emulated engine; default QEMU's "
                         "128)")
            ->check(CLI::Range(1, 100000))
            ->type_name("N");
        migrate->callback([&] {
            nlohmann::json body{{"to", b.dest_url}, {"token", read_destination_token(b.dest_token_file)}};
            if (!b.dest_fingerprint.empty())
                body["fingerprint"] = b.dest_fingerprint;
            if (!b.dest_ca_cert.empty())
                body["ca_cert_pem"] = read_small_file("--dest-ca-cert", b.dest_ca_cert);
            if (b.downtime_ms)
                body["downtime_ms"] = *b.downtime_ms;
            if (b.bandwidth_mib)
                body["bandwidth_mib"] = *b.bandwidth_mib;
            call("POST", path("vms", b.name) + "/migrate", View::None, b.name, body,
                 fmt::format("{} migrated to {}", b.name, b.dest_url));
            // The task's message carries the figures: total time, downtime, bytes, rounds.
            b.inv.done_from_task = true;
        });

        // `vm snapshot create|list|show|revert|delete VM [SNAPSHOT]` (Proxmox: qm snapshot,
        // listsnapshot, rollback, delsnapshot; virsh snapshot-create-as, -list, -revert, -delete).
        CLI::App* snapshot = vm->add_subcommand("snapshot", "snapshots of a VM: memory and disks together, or disks only")
                                 ->require_subcommand(1);
        {
            // Callbacks run after this block: they call snapshots_of(b.name), never a local lambda.
            auto snapshot_arg = [&](CLI::App* cmd) {
                cmd->add_option("SNAPSHOT", b.second, "the snapshot")->required()->type_name("");
            };
            CLI::App* take = snapshot->add_subcommand(
                "create", "take a snapshot: of a running or paused VM its memory, devices and disks at one instant; "
                          "of a stopped VM its disks");
            name_arg(take, "the VM");
            snapshot_arg(take);
            take->add_option("--description,-d", b.description, "a line saying what it is for")->type_name("TEXT");
            take->add_flag("--disk-only", b.disk_only,
                           "of a running VM too, only its disks (at one instant, without its memory)");
            take->callback([&] {
                nlohmann::json body{{"name", b.second}};
                if (!b.description.empty()) body["description"] = b.description;
                if (b.disk_only) body["disk_only"] = true;
                call("POST", snapshots_of(b.name), View::None, b.name, body,
                     fmt::format("snapshot {} of {} taken", b.second, b.name));
            });
            CLI::App* list = snapshot->add_subcommand("list", "list a VM's snapshots as a tree, the current one marked");
            name_arg(list, "the VM");
            list->callback([&] { call("GET", snapshots_of(b.name), View::SnapshotTable, b.name); });
            CLI::App* show = snapshot->add_subcommand("show", "show a snapshot");
            name_arg(show, "the VM");
            snapshot_arg(show);
            show->callback([&] { call("GET", snapshots_of(b.name) + "/" + encode(b.second), View::Snapshot, b.name); });
            CLI::App* revert = snapshot->add_subcommand(
                "revert", "bring a stopped VM back to a snapshot (a memory snapshot also starts it from that instant)");
            revert->alias("restore");
            revert->alias("rollback");
            name_arg(revert, "the VM");
            snapshot_arg(revert);
            revert->callback([&] {
                call("POST", snapshots_of(b.name) + "/" + encode(b.second) + "/restore", View::None, b.name, nullptr,
                     fmt::format("{} is back at snapshot {}", b.name, b.second));
                b.inv.done_from_task = true;
            });
            CLI::App* del = snapshot->add_subcommand("delete", "delete a snapshot and free its space");
            name_arg(del, "the VM");
            snapshot_arg(del);
            del->callback([&] {
                call("DELETE", snapshots_of(b.name) + "/" + encode(b.second), View::None, b.name, nullptr,
                     fmt::format("deleted snapshot {} of {}", b.second, b.name));
            });
        }
        // `vm clone VM NEW --from-snapshot SNAPSHOT` (Proxmox: qm clone --snapname; Firecracker
        // restores one snapshot into many microVMs).
        CLI::App* clone = vm->add_subcommand(
            "clone",
            "start a new VM from a running VM's memory snapshot: copies of its disks, new MACs, a reseeded "
            "RNG");
        name_arg(clone, "the VM the snapshot is of");
        clone->add_option("NEW", b.second, "the new VM's name")->required()->type_name("");
        clone->add_option("--from-snapshot,-s", b.from_snapshot, "the memory snapshot to start from")
            ->required()
            ->type_name("SNAPSHOT");
        clone->callback([&] {
            call("POST", snapshots_of(b.name) + "/" + encode(b.from_snapshot) + "/clone", View::None, b.name,
                 nlohmann::json{{"name", b.second}},
                 fmt::format("{} is running, cloned from snapshot {} of {}", b.second, b.from_snapshot, b.name));
            b.inv.done_from_task = true;
        });
        CLI::App* why_slow = vm->add_subcommand(
            "why-slow", "why a VM is slow: its vCPUs waiting for a host CPU, its CPU cap holding it back and its "
                        "disk latency over the last minutes, each with the fix");
        name_arg(why_slow, "the VM");
        // The diagnosis comes with the metrics history; a day's step keeps the series itself short.
        why_slow->callback([&] { call("GET", path("vms", b.name) + "/metrics?step=86400", View::WhySlow, b.name); });
        CLI::App* screenshot = vm->add_subcommand("screenshot", "save a running VM's screen as a PNG file");
        name_arg(screenshot, "the VM");
        screenshot->add_option("FILE", b.inv.display.file, "the PNG file to write")->required()->type_name("");
        screenshot->add_flag("--force,-f", b.inv.display.force, "replace FILE if it exists");
        screenshot->callback([&] {
            b.inv.action = Action::Screenshot;
            b.inv.request = HttpRequest{"GET", path("vms", b.name) + "/screenshot", std::nullopt};
            b.inv.subject = b.name;
        });
        CLI::App* vnc = vm->add_subcommand(
            "vnc", "open a local port for any VNC viewer to a running VM's screen (Ctrl-C stops)");
        name_arg(vnc, "the VM");
        vnc->add_option("--listen", b.inv.display.listen,
                        "where viewers connect, a loopback HOST:PORT (default 127.0.0.1 and the first free port "
                        "from 5900)")
            ->type_name("HOST:PORT");
        vnc->add_flag("--view-only", b.inv.display.view_only, "viewers see the screen; their keys and pointer are dropped");
        vnc->callback([&] {
            b.inv.action = Action::Vnc;
            b.inv.request = HttpRequest{"GET", path("vms", b.name) + "/vnc" + (b.inv.display.view_only ? "?view_only=1" : ""),
                                        std::nullopt};
            b.inv.subject = b.name;
        });

        // `vm snapshots VM`: the list, as `qm listsnapshot` has it.
        CLI::App* snapshots = vm->add_subcommand("snapshots", "list a VM's snapshots (same as vm snapshot list)");
        name_arg(snapshots, "the VM");
        snapshots->callback([&] { call("GET", path("vms", b.name) + "/snapshots", View::SnapshotTable, b.name); });

        CLI::App* edit = vm->add_subcommand(
            "edit", "change a stopped VM's settings, or a running VM's limits (with no flags: edit them in $EDITOR)");
        name_arg(edit, "the VM");
        b.vm.add_common(edit);
        edit->callback([&] {
            const nlohmann::json body = b.vm.body();
            if (body.empty()) {
                b.inv.action = Action::Edit;
                b.inv.request = HttpRequest{"PATCH", path("vms", b.name), std::nullopt};
                b.inv.view = View::Vm;
                b.inv.subject = b.name;
                b.inv.done_message = fmt::format("updated {}", b.name);
                return;
            }
            call("PATCH", path("vms", b.name), View::Vm, b.name, body, fmt::format("updated {}", b.name));
        });
    }

    // pool
    CLI::App* pool = app.add_subcommand("pool", "storage pools")->require_subcommand(1);
    {
        pool->add_subcommand("list", "list pools")->callback([&] { call("GET", path("pools"), View::PoolTable); });
        CLI::App* show = pool->add_subcommand("show", "show a pool");
        name_arg(show, "the pool");
        show->callback([&] { call("GET", path("pools", b.name), View::Pool, b.name); });
        CLI::App* create = pool->add_subcommand("create", "create a directory pool");
        name_arg(create, "the pool's name");
        create->add_option("--path", b.pool_path, "the directory that holds its volumes")->required();
        create->add_option("--driver", b.pool_driver, "the pool driver (dir)")->check(CLI::IsMember({"dir"}));
        create->callback([&] {
            call("POST", path("pools"), View::Pool, b.name,
                 nlohmann::json{{"name", b.name}, {"driver", b.pool_driver}, {"path", b.pool_path}},
                 fmt::format("created pool {}", b.name));
        });
        CLI::App* del = pool->add_subcommand("delete", "delete an empty pool");
        name_arg(del, "the pool");
        del->callback([&] {
            call("DELETE", path("pools", b.name), View::None, b.name, nullptr, fmt::format("deleted pool {}", b.name));
        });
    }

    // volume
    CLI::App* volume = app.add_subcommand("volume", "volumes (virtual disks) in pools")->require_subcommand(1);
    {
        auto volume_arg = [&](CLI::App* cmd, std::string& into, const char* name, const char* what) {
            std::string shown = name;  // usage lines say VOLUME, SOURCE, TARGET
            for (char& c : shown) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
            cmd->add_option(shown, into, what)->required()->check(k_volume_ref)->type_name("");
        };
        auto volume_path = [](const std::string& ref) {
            const VolumeRef v = split_volume(ref);
            return path("volumes", v.pool) + "/" + encode(v.name);
        };
        CLI::App* list = volume->add_subcommand("list", "list volumes");
        list->add_option("--pool,pool", b.pool_filter, "only this pool's volumes");
        list->callback([&] {
            call("GET", path("volumes") + (b.pool_filter.empty() ? "" : "?pool=" + encode(b.pool_filter)),
                 View::VolumeTable);
        });
        CLI::App* show = volume->add_subcommand("show", "show a volume");
        volume_arg(show, b.name, "volume", "POOL/VOLUME");
        show->callback([&] { call("GET", volume_path(b.name), View::Volume, b.name); });

        CLI::App* create = volume->add_subcommand("create", "create an empty volume");
        volume_arg(create, b.name, "volume", "POOL/VOLUME (or VOLUME in the default pool)");
        create->add_option("--size,-s,size", b.size, "its size, e.g. 10G")->required()->check(k_size)->type_name("SIZE");
        create->add_option("--format", b.format, "qcow2 (default) or raw")->check(CLI::IsMember({"qcow2", "raw"}));
        create->callback([&] {
            const VolumeRef v = split_volume(b.name);
            nlohmann::json body{{"pool", v.pool}, {"name", v.name}, {"size_bytes", *parse_size(b.size)}};
            if (!b.format.empty()) body["format"] = b.format;
            call("POST", path("volumes"), View::Volume, b.name, body, fmt::format("created volume {}/{}", v.pool, v.name));
        });

        CLI::App* clone = volume->add_subcommand("clone", "clone a volume (linked by default; --full copies)");
        volume_arg(clone, b.name, "source", "POOL/VOLUME to clone");
        volume_arg(clone, b.second, "target", "POOL/VOLUME of the clone (VOLUME alone: the source's pool)");
        clone->add_flag("--full", b.full_copy, "a full, independent copy (a task) instead of a linked clone");
        clone->callback([&] {
            const VolumeRef source = split_volume(b.name);
            VolumeRef target = split_volume(b.second);
            if (b.second.find('/') == std::string::npos) target.pool = source.pool;
            nlohmann::json body{{"pool", target.pool},
                                {"name", target.name},
                                {"from", {{"pool", source.pool}, {"volume", source.name}}},
                                {"linked", !b.full_copy}};
            call("POST", path("volumes"), View::Volume, b.second, body,
                 fmt::format("cloned {}/{} to {}/{}", source.pool, source.name, target.pool, target.name));
            b.inv.cancellable_task = b.full_copy;
        });

        CLI::App* resize = volume->add_subcommand("resize", "grow a volume");
        volume_arg(resize, b.name, "volume", "POOL/VOLUME");
        // `+5G` grows by that much (as `qm resize` takes it): corral reads the current size first.
        const CLI::Validator k_new_size = validator(
            [](const std::string& text) {
                auto bytes = parse_size(text.rfind('+', 0) == 0 ? text.substr(1) : text);
                return bytes ? std::string() : bytes.error().message();
            },
            "[+]SIZE");
        resize->add_option("SIZE", b.size, "the new size, e.g. 20G, or +5G to grow it by 5G")
            ->required()
            ->check(k_new_size)
            ->type_name("[+]SIZE");
        resize->callback([&] {
            if (b.size.rfind('+', 0) == 0) {
                const std::uint64_t grow = *parse_size(b.size.substr(1));
                call("POST", volume_path(b.name) + "/resize", View::Volume, b.name, nlohmann::json::object(),
                     fmt::format("grew {} by {}", b.name, format_size(grow)));
                b.inv.grow_by = grow;
                return;
            }
            call("POST", volume_path(b.name) + "/resize", View::Volume, b.name,
                 nlohmann::json{{"size_bytes", *parse_size(b.size)}},
                 fmt::format("resized {} to {}", b.name, format_size(*parse_size(b.size))));
        });

        // Host files go to the daemon as absolute paths: it does not share our working folder.
        auto absolute_file = [](const std::string& file) { return std::filesystem::absolute(file).lexically_normal().string(); };
        CLI::App* import = volume->add_subcommand(
            "import", "copy a raw or qcow2 image into a new volume (a task): a file on the daemon's host, or with "
                      "--remote a local file, uploaded");
        volume_arg(import, b.name, "volume", "POOL/VOLUME to create");
        import->add_option("FILE", b.second, "the image file (on the daemon's host; with --remote, here)")->required()->type_name("");
        import->callback([&, absolute_file] {
            const VolumeRef v = split_volume(b.name);
            call("POST", path("volumes"), View::Task, b.name,
                 nlohmann::json{{"pool", v.pool}, {"name", v.name}, {"import", absolute_file(b.second)}},
                 fmt::format("imported {} as {}/{}", b.second, v.pool, v.name));
            b.inv.transfer = Transfer{Transfer::Direction::Upload, b.second, v.pool, v.name, ""};
            b.inv.cancellable_task = true;
        });

        CLI::App* export_cmd = volume->add_subcommand(
            "export", "write a volume to a new file (a task): on the daemon's host, or with --remote a local file, "
                      "downloaded");
        volume_arg(export_cmd, b.name, "volume", "POOL/VOLUME");
        export_cmd->add_option("FILE", b.second, "the file to write (must not exist)")->required()->type_name("");
        export_cmd->add_option("--format", b.format, "qcow2 (default) or raw")->check(CLI::IsMember({"qcow2", "raw"}));
        export_cmd->callback([&, absolute_file] {
            nlohmann::json body{{"path", absolute_file(b.second)}};
            if (!b.format.empty()) body["format"] = b.format;
            call("POST", volume_path(b.name) + "/export", View::Task, b.name, body,
                 fmt::format("exported {} to {}", b.name, b.second));
            const VolumeRef v = split_volume(b.name);
            b.inv.transfer = Transfer{Transfer::Direction::Download, b.second, v.pool, v.name,
                                      b.format.empty() ? "qcow2" : b.format};
            b.inv.cancellable_task = true;
        });

        CLI::App* del = volume->add_subcommand("delete", "delete a volume");
        volume_arg(del, b.name, "volume", "POOL/VOLUME");
        del->callback([&] {
            call("DELETE", volume_path(b.name), View::None, b.name, nullptr, fmt::format("deleted volume {}", b.name));
        });
    }

    // image
    CLI::App* image = app.add_subcommand("image", "bootable images (kernel, initramfs, root volume)")->require_subcommand(1);
    {
        image->add_subcommand("list", "list images")->callback([&] { call("GET", path("images"), View::ImageTable); });
        CLI::App* show = image->add_subcommand("show", "show an image");
        name_arg(show, "the image");
        show->callback([&] { call("GET", path("images", b.name), View::Image, b.name); });
        CLI::App* prepare = image->add_subcommand("prepare", "prepare an image from Debian packages (a task)");
        b.name = "default";
        prepare->add_option("IMAGE", b.name, "the image (default: default)")->type_name("");
        prepare->callback([&] {
            call("POST", path("images"), View::None, b.name, nlohmann::json{{"name", b.name}},
                 fmt::format("prepared image {}", b.name));
        });
        CLI::App* del = image->add_subcommand("delete", "delete an image");
        name_arg(del, "the image");
        del->callback([&] {
            call("DELETE", path("images", b.name), View::None, b.name, nullptr, fmt::format("deleted image {}", b.name));
        });
    }

    // task
    CLI::App* task = app.add_subcommand("task", "long-running operations")->require_subcommand(1);
    {
        task->add_subcommand("list", "list tasks, newest first")->callback([&] { call("GET", path("tasks"), View::TaskTable); });
        CLI::App* show = task->add_subcommand("show", "show a task");
        name_arg(show, "the task id");
        show->callback([&] { call("GET", path("tasks", b.name), View::Task, b.name); });
        CLI::App* wait = task->add_subcommand("wait", "wait for a task to finish (exit 4 if it failed)");
        name_arg(wait, "the task id");
        wait->add_option("--timeout", b.wait_timeout, "give up after this many seconds (default: never)")
            ->check(at_least(0, "a number of seconds"))
            ->type_name("SECONDS");
        wait->callback([&] {
            call("GET", path("tasks", b.name), View::Task, b.name);
            b.inv.task_wait_only = true;
            b.inv.wait_seconds = b.wait_timeout;
        });
        CLI::App* cancel = task->add_subcommand(
            "cancel", "stop a copy, import or export; what it made is removed (waits until it stopped)");
        name_arg(cancel, "the task id");
        cancel->callback([&] {
            call("POST", path("tasks", b.name) + "/cancel", View::None, b.name, nlohmann::json::object());
            b.inv.cancelling = true;
        });
    }

    // host
    CLI::App* host = app.add_subcommand("host", "this host")->require_subcommand(1);
    host->add_subcommand("info", "the host, its engines and why the default engine was chosen")
        ->callback([&] { call("GET", path("host"), View::Host); });
    host->add_subcommand("capacity", "vCPUs and memory: allowed by the overcommit policy, allocated, used, free")
        ->callback([&] { call("GET", path("host") + "/capacity", View::Capacity); });
    {
        CLI::App* set = host->add_subcommand("set-capacity", "change the overcommit policy that starts are held to");
        set->add_option("--vcpus-per-cpu", b.vcpus_per_cpu, "vCPUs running VMs may hold per host CPU (default 4)")
            ->check(at_least(1, "a number of vCPUs"))
            ->type_name("N");
        set->add_option("--memory-percent", b.memory_percent,
                        "VM memory running VMs may hold, in percent of the host's memory (default 90)")
            ->check(at_least(1, "a percentage"))
            ->type_name("PERCENT");
        set->callback([&] {
            nlohmann::json body = nlohmann::json::object();
            if (b.vcpus_per_cpu) body["vcpus_per_cpu"] = *b.vcpus_per_cpu;
            if (b.memory_percent) body["memory_percent"] = *b.memory_percent;
            call("PATCH", path("host") + "/capacity", View::Capacity, "", body);
        });
    }

    // capacity
    {
        CLI::App* capacity = app.add_subcommand("capacity", "plan this host's capacity")->require_subcommand(1);
        CLI::App* plan = capacity->add_subcommand(
            "plan", "how many more VMs of a shape fit, from the VMs' measured use (95th percentiles) and the overcommit "
                    "policy; which resource runs out first, and when at the growth seen");
        plan->add_option("--shape", b.plan_shape, "the VMs to fit, VCPUScpu/MEMORY (default 1cpu/1G)")->type_name("SHAPE");
        plan->add_option("--what-if", b.what_ifs,
                         "plan as if: 'add N' (N VMs of --shape), 'add NxVCPUScpu/MEMORY', 'remove VM' (repeatable)")
            ->type_name("CHANGE");
        plan->callback([&] {
            auto body = capacity_plan_body(b.plan_shape, b.what_ifs);
            if (!body) throw CLI::ValidationError(body.error().message());
            call("POST", path("host") + "/capacity/plan", View::CapacityPlan, "", *body);
        });
    }

    app.add_subcommand("doctor", "check the host and its VMs for misconfigurations, each with its fix (exit 0: none "
                                 "or notes only, 5: warnings, 6: errors)")
        ->callback([&] { call("GET", path("host") + "/doctor", View::Doctor); });

    app.add_subcommand("events", "print events as they happen (Ctrl-C stops)")->callback([&] {
        b.inv.action = Action::Events;
        b.inv.request = HttpRequest{"GET", path("events"), std::nullopt};
    });

    // token
    CLI::App* token = app.add_subcommand("token", "API tokens for remote access (only on corrald's host)")
                          ->require_subcommand(1);
    {
        CLI::App* create = token->add_subcommand("create", "make a token; prints its secret, shown only this once");
        name_arg(create, "the token's name");
        create->callback([&] {
            call("POST", path("tokens"), View::TokenSecret, b.name, nlohmann::json{{"name", b.name}});
        });
        token->add_subcommand("list", "list tokens (names and dates, never secrets)")->callback([&] {
            call("GET", path("tokens"), View::TokenTable);
        });
        CLI::App* del = token->add_subcommand("delete", "revoke a token at once");
        name_arg(del, "the token");
        del->callback([&] {
            call("DELETE", path("tokens", b.name), View::None, b.name, nullptr,
                 fmt::format("deleted token {}", b.name));
        });
    }

    NetworkCommands network_commands(app, b.inv);  // cli/network_commands.cpp
    SecurityGroupCommands security_group_commands(app, b.inv);  // cli/security_group_commands.cpp
    BackupCommands backup_commands(app, b.inv);  // cli/backup_commands.cpp
    AlarmCommands alarm_commands(app, b.inv);    // cli/alarm_commands.cpp

    CLI::App* completion = app.add_subcommand("completion", "print a shell completion script");
    completion->add_option("SHELL", b.shell, "the shell")->required()->type_name("")->check(CLI::IsMember({"bash", "zsh", "fish"}));
    completion->callback([&] { b.inv.action = Action::Completion; });

    add_usual_aliases(app);
    add_examples_and_globals(app);

    ParseOutcome outcome;
    // Under --json a script reads the errors too: one JSON object instead of text.
    const bool json_errors = std::find(args.begin(), args.end(), "--json") != args.end();
    auto usage_error = [&](std::string text) {
        while (!text.empty() && text.back() == '\n') text.pop_back();
        static constexpr std::string_view k_prefix = "corral: ";
        if (json_errors) {
            if (text.rfind(k_prefix, 0) == 0) text.erase(0, k_prefix.size());
            outcome.err = nlohmann::json{{"error", {{"message", text}, {"exit_code", 2}}}}.dump() + "\n";
        } else {
            outcome.err = text + "\n";
        }
        outcome.exit_code = 2;
        return outcome;
    };
    if (auto mistake = check_words(app, args)) return usage_error("corral: " + *mistake);
    std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 takes them back to front
    try {
        app.parse(reversed);
    } catch (const CLI::ParseError& e) {
        std::ostringstream out;
        std::ostringstream err;
        const int code = app.exit(e, out, err);
        outcome.out = out.str();
        if (code != 0) return usage_error(err.str());
        outcome.err = err.str();
        outcome.exit_code = 0;
        return outcome;
    }
    if (b.inv.action == Action::Completion)
        b.inv.completion_script = b.shell == "fish"  ? fish_completion(app)
                                  : b.shell == "zsh" ? zsh_completion(bash_completion(app))
                                                     : bash_completion(app);
    b.inv.wait = !b.no_wait;
    if (!b.socket.empty()) b.inv.socket = b.socket;
    auto given = [](const std::string& value) { return value.empty() ? std::nullopt : std::optional(value); };
    b.inv.endpoint = EndpointFlags{given(b.socket), given(b.remote), given(b.token), given(b.ca_cert),
                                   given(b.fingerprint), given(b.token_file)};
    outcome.invocation = std::move(b.inv);
    return outcome;
}

}  // namespace corral::cli
