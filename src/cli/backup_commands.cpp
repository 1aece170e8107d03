#include "cli/backup_commands.h"

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <filesystem>
#include <tuple>

#include "base/api_path.h"
#include "cli/json_fields.h"
#include "cli/table.h"

namespace corral::cli {

namespace {

std::string repos_path(const std::string& name = {}) {
    return name.empty() ? api_path("/backup-repositories") : api_path("/backup-repositories/" + name);
}
std::string backups_path(const std::string& id = {}) {
    return id.empty() ? api_path("/backups") : api_path("/backups/" + id);
}

std::string size_text(const nlohmann::json& object, const char* key) {
    if (!object.is_object() || !object.contains(key) || !object[key].is_number_unsigned())
        return "-";
    const double bytes = double(object[key].get<uint64_t>());
    if (bytes >= double(1ull << 30))
        return fmt::format("{:.1f} GiB", bytes / double(1ull << 30));
    return fmt::format("{:.1f} MiB", bytes / double(1ull << 20));
}

std::string verified(const nlohmann::json& backup) {
    const auto& v = backup.is_object() && backup.contains("verify") ? backup["verify"] : nlohmann::json();
    if (!v.is_object() || !v["state"].is_string())
        return "never";
    return fmt::format("{} {}", v["state"].get<std::string>(), field_text(v, "at"));
}

/// "passed 2026-12-06T23:00:00Z (14.2 s)", "failed 2026-...: why" or "never".
/// "incremental since ID: 4.0 MiB" or "full: 64 MiB (why)"; "-" for backups made before the
/// read was recorded.
std::string read_text(const nlohmann::json& backup) {
    const auto& r = backup.is_object() && backup.contains("read") ? backup["read"] : nlohmann::json();
    if (!r.is_object() || !r.contains("mode") || !r["mode"].is_string())
        return "-";
    std::string out = r["mode"].get<std::string>();
    if (r.contains("base") && r["base"].is_string())
        out += " since " + r["base"].get<std::string>();
    out += ": " + size_text(r, "bytes");
    if (r.contains("full_reason") && r["full_reason"].is_string())
        out += fmt::format(" (read in full: {})", r["full_reason"].get<std::string>());
    return out;
}

std::string booted(const nlohmann::json& backup, bool with_error) {
    const auto& b = backup.is_object() && backup.contains("boot") ? backup["boot"] : nlohmann::json();
    if (!b.is_object() || !b["state"].is_string())
        return "never";
    std::string out = fmt::format("{} {}", b["state"].get<std::string>(), field_text(b, "at"));
    if (b["seconds"].is_number())
        out += fmt::format(" ({:.1f} s)", b["seconds"].get<double>());
    if (with_error && b["error"].is_string())
        out += ": " + b["error"].get<std::string>();
    return out;
}

std::string absolute(const std::string& file) {
    return std::filesystem::absolute(file).lexically_normal().string();
}

}  // namespace

BackupCommands::BackupCommands(CLI::App& app, Invocation& invocation) : m_inv(invocation) {
    CLI::App* bk = app.add_subcommand("backup", "backups of VMs in deduplicating repositories")->require_subcommand(1);
    auto repo_option = [this](CLI::App* cmd) {
        cmd->add_option("--repo", m_repo, "the repository (default: the only one)")->type_name("REPO");
    };

    CLI::App* repo = bk->add_subcommand("repo", "backup repositories corrald knows by name")->require_subcommand(1);
    auto make = [this](CLI::App* cmd, bool create) {
        cmd->add_option("name", m_name, "the repository's name")->required();
        cmd->add_option("--path", m_path, "its folder on corrald's host")->required()->type_name("DIR");
        cmd->add_option("--key", m_key,
                        "a key file (32 to 4096 random bytes, kept private): the repository is encrypted")
            ->type_name("FILE");
        cmd->callback([this, create] {
            nlohmann::json body = {{"name", m_name}, {"path", absolute(m_path)}, {"create", create}};
            if (!m_key.empty())
                body["key"] = absolute(m_key);
            call("POST", repos_path(), View::BackupRepo, body,
                 fmt::format("{} backup repository {}", create ? "created" : "added", m_name));
        });
    };
    make(repo->add_subcommand("create", "make a new repository in an empty or missing folder and name it"), true);
    make(repo->add_subcommand("add", "name an existing repository (made by corral-backup init or another corrald)"),
         false);
    repo->add_subcommand("list", "list repositories")->callback([this] {
        call("GET", repos_path(), View::BackupRepoTable);
    });
    CLI::App* show_repo = repo->add_subcommand("show", "show a repository");
    show_repo->add_option("name", m_name, "the repository")->required();
    show_repo->callback([this] { call("GET", repos_path(m_name), View::BackupRepo); });
    CLI::App* del_repo = repo->add_subcommand("delete", "forget a repository (its folder and backups stay)");
    del_repo->add_option("name", m_name, "the repository")->required();
    del_repo->callback([this] {
        call("DELETE", repos_path(m_name), View::None, nullptr,
             fmt::format("forgot backup repository {} (its folder is left in place)", m_name));
    });

    CLI::App* create = bk->add_subcommand(
        "create",
        "back up a VM's disks and configuration (a task); a running VM runs on, its disks captured at one instant; "
        "a stopped VM's disks are read incrementally (only what their dirty bitmaps mark) when they can be");
    create->add_option("vm", m_name, "the VM")->required();
    repo_option(create);
    create->callback([this] {
        nlohmann::json body = {{"vm", m_name}};
        if (!m_repo.empty())
            body["repository"] = m_repo;
        call("POST", backups_path(), View::Task, body, fmt::format("backed up {}", m_name));
        m_inv.done_from_task = true;
        m_inv.cancellable_task = true;
    });
    CLI::App* list = bk->add_subcommand("list", "list backups, oldest first");
    list->add_option("vm", m_name, "only this VM's");
    repo_option(list);
    list->callback([this] {
        std::string query;
        if (!m_name.empty())
            query += "vm=" + m_name;
        if (!m_repo.empty())
            query += (query.empty() ? "" : "&") + std::string("repository=") + m_repo;
        call("GET", backups_path() + (query.empty() ? "" : "?" + query), View::BackupTable);
    });
    auto id_arg = [this](CLI::App* cmd) {
        cmd->add_option("id", m_name, "the backup's id (backup list)")->required();
        cmd->add_option("--repo", m_repo, "the repository (default: the one that holds it)")->type_name("REPO");
    };
    CLI::App* show = bk->add_subcommand("show", "show a backup: its disks and the VM's configuration");
    id_arg(show);
    show->callback([this] { call("GET", backups_path(m_name) + repo_query(), View::Backup); });
    CLI::App* verify = bk->add_subcommand(
        "verify",
        "re-read and re-hash every chunk of a backup, or with --boot boot it in a throwaway VM (a task; fails when "
        "bad)");
    id_arg(verify);
    verify->add_flag("--boot", m_boot,
                     "restore it as a throwaway VM with no NICs, boot it and wait for the ready pattern on its "
                     "console; the VM is removed afterwards");
    verify->add_option("--timeout", m_timeout, "with --boot: seconds to wait for the ready pattern (default 120)")
        ->check(CLI::Range(10, 3600))
        ->type_name("SECONDS");
    verify
        ->add_option("--ready", m_ready,
                     "with --boot: the console line to wait for, a regular expression (default: "
                     "'CORRAL-INIT: up|login: *$')")
        ->type_name("REGEX");
    verify->callback([this] {
        if (!m_boot && (m_timeout || !m_ready.empty()))
            throw CLI::ValidationError("--timeout and --ready", "apply to --boot only");
        nlohmann::json body = nullptr;
        if (m_boot) {
            body = {{"boot", true}};
            if (m_timeout)
                body["timeout_s"] = m_timeout;
            if (!m_ready.empty())
                body["ready"] = m_ready;
        }
        call("POST", backups_path(m_name) + "/verify" + repo_query(), View::Task, body,
             fmt::format("verified backup {}", m_name));
        m_inv.done_from_task = true;
        m_inv.cancellable_task = true;
    });
    CLI::App* restore =
        bk->add_subcommand("restore", "restore a backup as a new VM (a task): its disks go to new volumes");
    id_arg(restore);
    restore->add_option("--as", m_as, "the new VM's name (must not exist)")->required()->type_name("NEWVM");
    restore->callback([this] {
        call("POST", backups_path(m_name) + "/restore" + repo_query(), View::Task, {{"as", m_as}},
             fmt::format("restored backup {} as {}", m_name, m_as));
        m_inv.done_from_task = true;
        m_inv.cancellable_task = true;
    });
    add_schedule_commands(*bk);
    CLI::App* prune = bk->add_subcommand(
        "prune", "remove the backups a retention policy does not keep, per VM (their chunks go at the next gc)");
    prune->add_option("repo", m_repo, "the repository")->required();
    prune->add_option("--vm", m_vm, "only this VM's backups (default: each VM's on its own)")->type_name("VM");
    for (auto [flag, into, what] : {std::tuple{"--keep-last", &m_keep_last, "the newest N backups"},
                                    std::tuple{"--keep-daily", &m_keep_daily, "the newest of each of the last N days"},
                                    std::tuple{"--keep-weekly", &m_keep_weekly, "the newest of each of the last N weeks"},
                                    std::tuple{"--keep-monthly", &m_keep_monthly,
                                               "the newest of each of the last N months"}})
        prune->add_option(flag, *into, std::string("keep ") + what)->check(CLI::NonNegativeNumber)->type_name("N");
    prune->add_flag("--dry-run", m_dry_run, "say what would be removed, remove nothing");
    prune->callback([this] {
        // Said here in the CLI's words (the API's refusal names its own field, keep_last).
        if (m_keep_last == 0 && m_keep_daily == 0 && m_keep_weekly == 0 && m_keep_monthly == 0)
            throw CLI::ValidationError(
                "backup prune needs at least one of --keep-last, --keep-daily, --keep-weekly or --keep-monthly "
                "above 0 (a policy that keeps nothing would remove every backup)");
        nlohmann::json body = nlohmann::json::object();
        if (!m_vm.empty())
            body["vm"] = m_vm;
        for (auto [key, value] : {std::pair{"keep_last", m_keep_last}, std::pair{"keep_daily", m_keep_daily},
                                  std::pair{"keep_weekly", m_keep_weekly}, std::pair{"keep_monthly", m_keep_monthly}})
            if (value > 0)
                body[key] = value;
        if (m_dry_run)
            body["dry_run"] = true;
        call("POST", repos_path(m_repo) + "/prune", View::BackupPruned, body);
    });
    CLI::App* gc = bk->add_subcommand(
        "gc", "free the chunks no backup uses, and what a killed backup left (a task; waits while one runs)");
    gc->add_option("repo", m_repo, "the repository")->required();
    gc->callback([this] {
        call("POST", repos_path(m_repo) + "/gc", View::Task, nullptr, fmt::format("collected garbage in {}", m_repo));
        m_inv.done_from_task = true;
    });
    CLI::App* del = bk->add_subcommand("delete", "delete a backup (its chunks are freed by backup gc)");
    id_arg(del);
    del->callback([this] {
        call("DELETE", backups_path(m_name) + repo_query(), View::None, nullptr,
             fmt::format("deleted backup {}", m_name));
    });
}

void BackupCommands::add_schedule_commands(CLI::App& bk) {
    CLI::App* schedule = bk.add_subcommand("schedule", "backups that corrald takes on a schedule (host's local time)")
                             ->require_subcommand(1);
    CLI::App* create = schedule->add_subcommand(
        "create", "back up a VM every day (or every week) at a time, then prune, then maybe verify --boot");
    create->add_option("vm", m_name, "the VM")->required();
    create->add_option("--daily", m_daily, "the time of day, HH:MM, the host's local time")
        ->required()
        ->type_name("HH:MM");
    create->add_option("--weekly", m_weekly, "only on this day of the week (monday ... sunday)")->type_name("DAY");
    create->add_option("--repo", m_repo, "the repository (default: the only one)")->type_name("REPO");
    const char* keeps[4][2] = {{"--keep-last", "the newest N backups"},
                               {"--keep-daily", "the newest of each of the last N days"},
                               {"--keep-weekly", "the newest of each of the last N weeks"},
                               {"--keep-monthly", "the newest of each of the last N months"}};
    for (int i = 0; i < 4; ++i)
        create->add_option(keeps[i][0], m_sched_keep[i], std::string("after each backup, prune keeping ") + keeps[i][1])
            ->type_name("N");
    create->add_flag("--verify-boot", m_verify_boot, "after each backup, prove it boots (backup verify --boot)");
    create->callback([this] {
        nlohmann::json body = {{"vm", m_name}, {"time", m_daily}};
        if (!m_weekly.empty())
            body["day"] = m_weekly;
        if (!m_repo.empty())
            body["repository"] = m_repo;
        const char* keys[4] = {"keep_last", "keep_daily", "keep_weekly", "keep_monthly"};
        for (int i = 0; i < 4; ++i)
            if (m_sched_keep[i])
                body[keys[i]] = *m_sched_keep[i];
        if (m_verify_boot)
            body["verify_boot"] = true;
        call("POST", api_path("/backup-schedules"), View::BackupScheduleTable, body);
    });
    schedule->add_subcommand("list", "list schedules: when they run next, and how their last run went")
        ->callback([this] { call("GET", api_path("/backup-schedules"), View::BackupScheduleTable); });
    CLI::App* del = schedule->add_subcommand("delete", "delete a schedule (its backups stay)");
    del->add_option("id", m_name, "the schedule's id (schedule list)")->required();
    del->callback([this] {
        call("DELETE", api_path("/backup-schedules/" + m_name), View::None, nullptr,
             fmt::format("deleted backup schedule {}", m_name));
    });
    CLI::App* run = schedule->add_subcommand("run", "run a schedule now (a task): backup, prune, verify --boot");
    run->add_option("id", m_name, "the schedule's id (schedule list)")->required();
    run->callback([this] {
        call("POST", api_path("/backup-schedules/" + m_name + "/run"), View::Task, nullptr,
             fmt::format("ran backup schedule {}", m_name));
        m_inv.done_from_task = true;
        m_inv.cancellable_task = true;
    });
}

std::string BackupCommands::repo_query() const {
    return m_repo.empty() ? "" : "?repository=" + m_repo;
}

void BackupCommands::call(std::string method, std::string target, View view, nlohmann::json body, std::string done) {
    m_inv.set_call(std::move(method), std::move(target), view, std::move(body), m_name, std::move(done));
}

std::string render_backup_view(View view, const nlohmann::json& answer) {
    switch (view) {
        case View::BackupRepoTable: {
            Table table({"NAME", "PATH", "ENCRYPTED", "BACKUPS"});
            for (const auto& r : items(answer))
                table.add_row({field_text(r, "name"), field_text(r, "path"), r.value("encrypted", false) ? "yes" : "no",
                               r.contains("error") && r["error"].is_string() ? "error: " + field_text(r, "error")
                                                                             : field_text(r, "backups")});
            return table.render();
        }
        case View::BackupRepo:
            return render_fields({{"name", field_text(answer, "name")},
                                  {"path", field_text(answer, "path")},
                                  {"key", field_text(answer, "key")},
                                  {"backups", field_text(answer, "backups")},
                                  {"chunk size", size_text(answer, "chunk_size")},
                                  {"created", field_text(answer, "created_at")},
                                  {"error", field_text(answer, "error")}});
        case View::BackupTable: {
            Table table({"ID", "VM", "REPOSITORY", "CREATED", "SIZE", "ADDED", "VERIFIED", "BOOTED"});
            for (const auto& b : items(answer))
                table.add_row({field_text(b, "id"), field_text(b, "vm"), field_text(b, "repository"),
                               field_text(b, "created_at"), size_text(b, "logical_bytes"), size_text(b, "new_bytes"),
                               verified(b), booted(b, false)});
            return table.render();
        }
        case View::Backup: {
            std::string out = render_fields({{"id", field_text(answer, "id")},
                                             {"vm", field_text(answer, "vm")},
                                             {"repository", field_text(answer, "repository")},
                                             {"created", field_text(answer, "created_at")},
                                             {"size", size_text(answer, "logical_bytes")},
                                             {"added", size_text(answer, "new_bytes")},
                                             {"read", read_text(answer)},
                                             {"verified", verified(answer)},
                                             {"booted", booted(answer, true)}});
            Table table({"DISK", "SIZE", "CHUNKS", "ZERO CHUNKS"});
            if (answer.is_object() && answer.contains("disks"))
                for (const auto& d : items(answer["disks"]))
                    table.add_row({field_text(d, "name"), size_text(d, "virtual_size"), field_text(d, "chunks"),
                                   field_text(d, "zero_chunks")});
            return out + table.render();
        }
        case View::BackupPruned: {
            const bool dry = answer.is_object() && answer.value("dry_run", false);
            Table table({"BACKUP", dry ? "WOULD BE" : "NOW"});
            for (const char* key : {"kept", "removed"})
                if (answer.is_object() && answer.contains(key))
                    for (const auto& id : items(answer[key]))
                        table.add_row({id.is_string() ? id.get<std::string>() : id.dump(), key});
            const auto count = [&](const char* key) {
                return answer.is_object() && answer.contains(key) ? items(answer[key]).size() : size_t{0};
            };
            return table.render() + fmt::format("{} kept, {} {}removed{}\n", count("kept"), count("removed"),
                                                dry ? "would be " : "", dry ? " (dry run: nothing was)" : "");
        }
        case View::BackupScheduleTable: {
            Table table({"ID", "VM", "REPOSITORY", "WHEN", "KEEP", "BOOT", "NEXT RUN", "LAST RUN", "RESULT"});
            // POST answers with the one schedule it made.
            const nlohmann::json list = answer.is_object() ? nlohmann::json::array({answer}) : answer;
            for (const auto& s : items(list)) {
                std::string when = field_text(s, "time");
                when = s.contains("day") && s["day"].is_string() ? fmt::format("{} {}", field_text(s, "day"), when)
                                                                 : "daily " + when;
                std::string keep;
                if (s.contains("keep") && s["keep"].is_object())
                    for (auto it = s["keep"].begin(); it != s["keep"].end(); ++it)
                        keep += (keep.empty() ? "" : ",") + it.key() + "=" + it.value().dump();
                std::string result = field_text(s, "last_result");
                if (s.contains("last_result") && s["last_result"] == "failed")
                    result += ": " + field_text(s, "last_message");
                table.add_row({field_text(s, "id"), field_text(s, "vm"), field_text(s, "repository"), when,
                               keep.empty() ? "-" : keep, s.value("verify_boot", false) ? "yes" : "no",
                               field_text(s, "next_run"), field_text(s, "last_run"), result});
            }
            return table.render();
        }
        default:
            return {};
    }
}

}  // namespace corral::cli
