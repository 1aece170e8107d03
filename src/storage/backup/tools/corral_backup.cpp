// corral-backup: the backup repository from a shell, with no daemon (as corral-img is for
// images). corrald's `corral backup ...` commands use the same library (operations.h).

#include <fmt/chrono.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <iostream>
#include <sstream>

#include "base/size.h"
#include "storage/backup/backup_key.h"
#include "storage/backup/incremental.h"
#include "storage/backup/operations.h"

using namespace corral;
using namespace corral::storage;
using namespace corral::storage::backup;
using nlohmann::json;

namespace {

constexpr const char* k_usage = R"(usage: corral-backup COMMAND ...
  keygen FILE                                   write a new 32-byte key file (mode 0600)
  init REPO [--key FILE] [--chunk-size SIZE] [--zstd-level N]
  create REPO --vm NAME [--config FILE.json] [--key FILE] [--incremental] DISK=IMAGE...
                                                --incremental: read only what each qcow2 disk's
                                                bitmap corral-gen-<VM's newest backup> marks
                                                (add it with qemu-img bitmap --add after a backup)
  list REPO [--vm NAME] [--key FILE] [--json]
  show REPO BACKUP [--key FILE]
  verify REPO [BACKUP...] [--key FILE]
  restore REPO BACKUP --to PATH [--disk NAME] [--format qcow2|raw] [--key FILE]
  delete REPO BACKUP [--key FILE]
  prune REPO [--vm NAME] [--keep-last N] [--keep-daily N] [--keep-weekly N] [--keep-monthly N]
             [--dry-run] [--key FILE]
  gc REPO [--key FILE]
)";

struct Args {
    std::vector<std::string> positional;
    std::vector<std::pair<std::string, std::string>> options;
    std::optional<std::string> get(const std::string& name) const {
        std::optional<std::string> v;
        for (const auto& [k, val] : options)
            if (k == name)
                v = val;
        return v;
    }
    bool has(const std::string& name) const { return get(name).has_value(); }
};

Result<Args> parse_args(int argc, char** argv, const std::vector<std::string>& with_value,
                        const std::vector<std::string>& switches) {
    Args args;
    for (int i = 2; i < argc; ++i) {
        std::string a = argv[i];
        if (a.size() > 1 && a[0] == '-') {
            if (std::find(with_value.begin(), with_value.end(), a) != with_value.end()) {
                if (i + 1 >= argc)
                    return fail(fmt::format("option {} needs a value", a), EINVAL);
                args.options.push_back({a, argv[++i]});
            } else if (std::find(switches.begin(), switches.end(), a) != switches.end()) {
                args.options.push_back({a, ""});
            } else {
                std::string allowed;
                for (const auto& o : with_value)
                    allowed += (allowed.empty() ? "" : ", ") + o + " VALUE";
                for (const auto& o : switches)
                    allowed += (allowed.empty() ? "" : ", ") + o;
                return fail(fmt::format("unknown option '{}' (allowed: {})", a, allowed), EINVAL);
            }
        } else {
            args.positional.push_back(a);
        }
    }
    return args;
}

Result<void> need(const Args& a, size_t min, size_t max, const char* what) {
    if (a.positional.size() < min || a.positional.size() > max)
        return fail(fmt::format("expected {} (got {} arguments)", what, a.positional.size()), EINVAL);
    return {};
}

Result<int> parse_count(const Args& a, const std::string& name) {
    auto v = a.get(name);
    if (!v)
        return 0;
    try {
        size_t used = 0;
        int n = std::stoi(*v, &used);
        if (used == v->size() && n >= 0)
            return n;
    } catch (const std::exception&) {
    }
    return fail(fmt::format("{} '{}' is invalid (allowed: a whole number, 0 or more)", name, *v), EINVAL);
}

std::string human(uint64_t bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = double(bytes);
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        ++u;
    }
    return u == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.1f} {}", v, units[u]);
}

std::string rate(uint64_t bytes, double seconds) {
    return seconds > 0 ? human(static_cast<uint64_t>(bytes / seconds)) + "/s" : "-";
}

std::string when(int64_t seconds) {
    std::tm tm{};
    const time_t t = static_cast<time_t>(seconds);
    gmtime_r(&t, &tm);
    return fmt::format("{:%Y-%m-%d %H:%M:%S}Z", tm);
}

Result<Repository> open_repo(const Args& a) {
    return Repository::open(a.positional.at(0), a.get("--key"));
}

Result<int> cmd_keygen(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, {}, {}));
    TRY_VOID(need(a, 1, 1, "keygen FILE"));
    TRY_VOID(create_key_file(a.positional[0]));
    fmt::print("wrote key file {} (keep a copy elsewhere: without it the backups cannot be read)\n",
               a.positional[0]);
    return 0;
}

Result<int> cmd_init(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, {"--key", "--chunk-size", "--zstd-level"}, {}));
    TRY_VOID(need(a, 1, 1, "init REPO"));
    RepositoryCreateOptions options{.key_file = a.get("--key")};
    if (auto size = a.get("--chunk-size")) {
        const uint64_t bytes = TRY_CONTEXT(parse_size(*size), "--chunk-size");
        if (bytes > UINT32_MAX)
            return fail(fmt::format("--chunk-size {} is too large", *size), EINVAL);
        options.chunk_size = static_cast<uint32_t>(bytes);
    }
    if (a.has("--zstd-level"))
        options.zstd_level = TRY(parse_count(a, "--zstd-level"));
    TRY_VOID(Repository::create(a.positional[0], options));
    fmt::print("created repository {} ({} chunks, zstd level {}, {})\n", a.positional[0],
               human(options.chunk_size), options.zstd_level,
               options.key_file ? "encrypted with AES-256-GCM" : "not encrypted");
    return 0;
}

Result<int> cmd_create(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, {"--vm", "--config", "--key"}, {"--incremental"}));
    TRY_VOID(need(a, 2, 64, "create REPO --vm NAME DISK=IMAGE..."));
    BackupRequest request;
    if (!a.has("--vm"))
        return fail("--vm is missing (the name the backup is filed under)", EINVAL);
    request.vm = *a.get("--vm");
    if (auto config = a.get("--config")) {
        std::ifstream in(*config);
        if (!in)
            return fail(fmt::format("--config '{}' cannot be read", *config), ENOENT);
        std::stringstream text;
        text << in.rdbuf();
        request.config_json = text.str();
    }
    for (size_t i = 1; i < a.positional.size(); ++i) {
        const std::string& spec = a.positional[i];
        const auto eq = spec.find('=');
        if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size())
            return fail(fmt::format("disk '{}' is invalid (allowed: NAME=IMAGE, e.g. root=vm.qcow2)", spec),
                        EINVAL);
        request.disks.push_back({.name = spec.substr(0, eq), .path = spec.substr(eq + 1), .format = {}});
    }
    Repository repo = TRY(open_repo(a));
    if (a.has("--incremental"))
        for (auto& disk : request.disks)
            TRY_VOID(plan_incremental(repo, request.vm, disk));
    else
        for (auto& disk : request.disks)
            disk.full_reason = "--incremental not given";
    BackupResult r = TRY(create_backup(repo, request, nullptr));
    fmt::print(
        "backup {}: {} in {} disk(s), {}, read {}, {} chunks ({} new, {} written), {} zero chunks, "
        "{:.2f} s, {}\n",
        r.id, human(r.logical_bytes), request.disks.size(),
        r.read_mode == "incremental" ? fmt::format("incremental since {}", r.base)
                                     : fmt::format("full read ({})", r.full_reason),
        human(r.read_bytes), r.chunks, r.new_chunks, human(r.new_bytes), r.zero_chunks, r.seconds,
        rate(r.logical_bytes, r.seconds));
    return 0;
}

Result<int> cmd_list(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, {"--vm", "--key"}, {"--json"}));
    TRY_VOID(need(a, 1, 1, "list REPO"));
    Repository repo = TRY(open_repo(a));
    const auto records = TRY(list_backups(repo, a.get("--vm")));
    if (a.has("--json")) {
        json out = json::array();
        for (const auto& r : records)
            out.push_back({{"id", r.id}, {"vm", r.vm}, {"created", r.created}, {"disks", r.disks},
                           {"logical_bytes", r.logical_bytes}, {"chunks", r.chunks},
                           {"new_chunks", r.new_chunks}, {"new_bytes", r.new_bytes},
                           {"verify_state", r.verify_state}, {"verified_at", r.verified_at},
                           {"verify_error", r.verify_error}});
        fmt::print("{}\n", out.dump(2));
        return 0;
    }
    fmt::print("{:<40} {:<12} {:<21} {:>10} {:>10} {}\n", "ID", "VM", "CREATED", "SIZE", "ADDED", "VERIFIED");
    for (const auto& r : records)
        fmt::print("{:<40} {:<12} {:<21} {:>10} {:>10} {}\n", r.id, r.vm, when(r.created), human(r.logical_bytes),
                   human(r.new_bytes),
                   r.verify_state.empty() ? "never" : r.verify_state + " " + when(r.verified_at));
    return 0;
}

Result<int> cmd_show(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, {"--key"}, {}));
    TRY_VOID(need(a, 2, 2, "show REPO BACKUP"));
    Repository repo = TRY(open_repo(a));
    const auto [record, index] = TRY(show_backup(repo, a.positional[1]));
    json disks = json::array();
    for (const auto& d : index.disks) {
        const auto zero = std::count(d.chunks.begin(), d.chunks.end(), std::string());
        disks.push_back({{"name", d.name}, {"virtual_size", d.virtual_size}, {"chunks", d.chunks.size()},
                         {"zero_chunks", zero}});
    }
    json out = {{"id", record.id},
                {"vm", record.vm},
                {"created", when(record.created)},
                {"chunk_size", index.chunk_size},
                {"logical_bytes", record.logical_bytes},
                {"new_bytes", record.new_bytes},
                {"read_mode", record.read_mode},
                {"read_bytes", record.read_bytes},
                {"base", record.base},
                {"full_reason", record.full_reason},
                {"verify_state", record.verify_state},
                {"verify_error", record.verify_error},
                {"config", json::parse(index.config_json)},
                {"disks", disks}};
    fmt::print("{}\n", out.dump(2));
    return 0;
}

Result<int> cmd_verify(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, {"--key"}, {}));
    TRY_VOID(need(a, 1, 1000, "verify REPO [BACKUP...]"));
    Repository repo = TRY(open_repo(a));
    std::vector<std::string> ids(a.positional.begin() + 1, a.positional.end());
    VerifyResult r = TRY(verify_backups(repo, ids, nullptr));
    for (const auto& p : r.problems)
        fmt::print("BAD {}\n", p.describe());
    fmt::print("verified {} backup(s), {} chunks ({}) in {:.2f} s, {}: {} bad\n", r.backups, r.chunks,
               human(r.bytes), r.seconds, rate(r.bytes, r.seconds), r.bad_backups.size());
    return r.bad_backups.empty() ? 0 : 1;
}

Result<int> cmd_restore(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, {"--key", "--to", "--disk", "--format"}, {}));
    TRY_VOID(need(a, 2, 2, "restore REPO BACKUP --to PATH"));
    if (!a.has("--to"))
        return fail("--to is missing (the new image to write)", EINVAL);
    RestoreRequest request{.backup = a.positional[1], .disk = a.get("--disk").value_or(""),
                           .destination = *a.get("--to"), .format = ImageFormat::Qcow2};
    if (auto f = a.get("--format"))
        request.format = TRY_CONTEXT(parse_format(*f), "--format");
    Repository repo = TRY(open_repo(a));
    RestoreResult r = TRY(restore_disk(repo, request, nullptr));
    fmt::print("restored {} ({} written) to {} in {:.2f} s, {}\n", human(r.virtual_size), human(r.written_bytes),
               request.destination, r.seconds, rate(r.virtual_size, r.seconds));
    return 0;
}

Result<int> cmd_delete(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, {"--key"}, {}));
    TRY_VOID(need(a, 2, 2, "delete REPO BACKUP"));
    Repository repo = TRY(open_repo(a));
    TRY_VOID(delete_backup(repo, a.positional[1]));
    fmt::print("deleted backup {} (its chunks are freed by gc)\n", a.positional[1]);
    return 0;
}

Result<int> cmd_prune(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv,
                            {"--key", "--vm", "--keep-last", "--keep-daily", "--keep-weekly", "--keep-monthly"},
                            {"--dry-run"}));
    TRY_VOID(need(a, 1, 1, "prune REPO"));
    PruneOptions options{.vm = a.get("--vm"),
                         .keep_last = TRY(parse_count(a, "--keep-last")),
                         .keep_daily = TRY(parse_count(a, "--keep-daily")),
                         .keep_weekly = TRY(parse_count(a, "--keep-weekly")),
                         .keep_monthly = TRY(parse_count(a, "--keep-monthly")),
                         .dry_run = a.has("--dry-run")};
    Repository repo = TRY(open_repo(a));
    PruneResult r = TRY(prune_backups(repo, options));
    for (const auto& id : r.kept)
        fmt::print("keep   {}\n", id);
    for (const auto& id : r.removed)
        fmt::print("{} {}\n", options.dry_run ? "would remove" : "remove", id);
    return 0;
}

Result<int> cmd_gc(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, {"--key"}, {}));
    TRY_VOID(need(a, 1, 1, "gc REPO"));
    Repository repo = TRY(open_repo(a));
    GcResult r = TRY(collect_garbage(repo));
    fmt::print("removed {} chunks ({}), {} incomplete backup(s), {} temporary file(s); kept {} chunks ({})\n",
               r.removed_chunks, human(r.removed_bytes), r.removed_incomplete, r.removed_temporaries,
               r.kept_chunks, human(r.kept_bytes));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::cout << k_usage;
        return argc < 2 ? 2 : 0;
    }
    const std::string command = argv[1];
    Result<int> result = [&]() -> Result<int> {
        if (command == "keygen") return cmd_keygen(argc, argv);
        if (command == "init") return cmd_init(argc, argv);
        if (command == "create") return cmd_create(argc, argv);
        if (command == "list") return cmd_list(argc, argv);
        if (command == "show") return cmd_show(argc, argv);
        if (command == "verify") return cmd_verify(argc, argv);
        if (command == "restore") return cmd_restore(argc, argv);
        if (command == "delete") return cmd_delete(argc, argv);
        if (command == "prune") return cmd_prune(argc, argv);
        if (command == "gc") return cmd_gc(argc, argv);
        return fail(fmt::format("unknown command '{}' (allowed: keygen, init, create, list, show, verify, "
                                "restore, delete, prune, gc)",
                                command),
                    EINVAL);
    }();
    if (!result) {
        // strerror only for failed system calls; a domain error's errno is only its category.
        const Error& e = result.error();
        fmt::print(stderr, "corral-backup: {}\n", e.kind() == ErrorKind::System ? e.describe() : e.message());
        return result.error().kind() == ErrorKind::Invalid ? 2 : 1;
    }
    return *result;
}
