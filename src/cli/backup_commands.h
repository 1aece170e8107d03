#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"

namespace CLI {
class App;
}

namespace corral::cli {

/// `corral backup repo create|add|list|show|delete` and `corral backup create|list|show|verify|
/// restore|delete` (docs/cli.md "Backups"). The object holds what CLI11 binds the options to, so
/// it lives as long as the parse.
class BackupCommands {
public:
    BackupCommands(CLI::App& app, Invocation& invocation);

private:
    void call(std::string method, std::string target, View view, nlohmann::json body = nullptr, std::string done = {});
    /// `backup schedule create|list|delete|run`.
    void add_schedule_commands(CLI::App& bk);
    /// "?repository=R" when --repo was given.
    std::string repo_query() const;

    Invocation& m_inv;
    std::string m_name;
    std::string m_path;
    std::string m_key;
    std::string m_repo;
    std::string m_as;
    std::string m_vm;
    int m_keep_last = 0, m_keep_daily = 0, m_keep_weekly = 0, m_keep_monthly = 0;
    bool m_dry_run = false;
    bool m_boot = false;
    int m_timeout = 0;  ///< 0: corrald's default
    std::string m_ready;
    // backup schedule create
    std::string m_daily, m_weekly;
    std::optional<int> m_sched_keep[4];
    bool m_verify_boot = false;
};

/// The backup views (View::BackupRepoTable, BackupRepo, BackupTable, Backup, BackupPruned,
/// BackupScheduleTable) as text.
std::string render_backup_view(View view, const nlohmann::json& answer);

}  // namespace corral::cli
