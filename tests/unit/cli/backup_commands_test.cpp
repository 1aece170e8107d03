#include "cli/backup_commands.h"

#include <gtest/gtest.h>

#include "command_line_support.h"

#include <filesystem>

namespace corral::cli {
namespace {

using json = nlohmann::json;
using testing::parse;
using testing::request;

TEST(BackupCommands, RepositoryVerbs) {
    EXPECT_EQ(parse({"backup", "repo", "create", "main", "--path", "/srv/b", "--key", "/root/k"}).request,
              request("POST", "/api/v1/backup-repositories",
                      json{{"name", "main"}, {"path", "/srv/b"}, {"create", true}, {"key", "/root/k"}}));
    // A relative path is made absolute here: corrald's working folder means nothing to the user.
    const std::string here = std::filesystem::current_path().string();
    EXPECT_EQ(parse({"backup", "repo", "add", "old", "--path", "repo"}).request,
              request("POST", "/api/v1/backup-repositories",
                      json{{"name", "old"}, {"path", here + "/repo"}, {"create", false}}));
    EXPECT_EQ(parse({"backup", "repo", "list"}).request, request("GET", "/api/v1/backup-repositories"));
    EXPECT_EQ(parse({"backup", "repo", "show", "main"}).request, request("GET", "/api/v1/backup-repositories/main"));
    EXPECT_EQ(parse({"backup", "repo", "delete", "main"}).request,
              request("DELETE", "/api/v1/backup-repositories/main"));
    EXPECT_EQ(parse_command_line({"backup", "repo", "create", "main"}).exit_code, 2);  // --path is required
}

TEST(BackupCommands, BackupVerbs) {
    auto create = parse({"backup", "create", "web", "--repo", "main"});
    EXPECT_EQ(create.request, request("POST", "/api/v1/backups", json{{"vm", "web"}, {"repository", "main"}}));
    EXPECT_TRUE(create.done_from_task);
    EXPECT_EQ(parse({"backup", "create", "web"}).request, request("POST", "/api/v1/backups", json{{"vm", "web"}}));
    EXPECT_EQ(parse({"backup", "list"}).request, request("GET", "/api/v1/backups"));
    EXPECT_EQ(parse({"backup", "list", "web", "--repo", "main"}).request,
              request("GET", "/api/v1/backups?vm=web&repository=main"));
    EXPECT_EQ(parse({"backup", "show", "web-1"}).request, request("GET", "/api/v1/backups/web-1"));
    EXPECT_EQ(parse({"backup", "verify", "web-1", "--repo", "main"}).request,
              request("POST", "/api/v1/backups/web-1/verify?repository=main"));
    EXPECT_EQ(parse({"backup", "restore", "web-1", "--as", "copy"}).request,
              request("POST", "/api/v1/backups/web-1/restore", json{{"as", "copy"}}));
    EXPECT_EQ(parse_command_line({"backup", "restore", "web-1"}).exit_code, 2);  // --as is required
    EXPECT_EQ(parse({"backup", "delete", "web-1"}).request, request("DELETE", "/api/v1/backups/web-1"));
}

TEST(BackupCommands, Views) {
    const json backups = json::array({{{"id", "web-1"},
                                       {"vm", "web"},
                                       {"repository", "main"},
                                       {"created_at", "2026-12-06T21:00:00Z"},
                                       {"logical_bytes", 67108864u},
                                       {"new_bytes", 0u},
                                       {"verify", {{"state", "ok"}, {"at", "2026-12-06T21:05:00Z"}}}}});
    const std::string table = render_backup_view(View::BackupTable, backups);
    EXPECT_NE(table.find("web-1"), std::string::npos) << table;
    EXPECT_NE(table.find("64.0 MiB"), std::string::npos) << table;
    EXPECT_NE(table.find("ok 2026-12-06T21:05:00Z"), std::string::npos) << table;
    const json repos = json::array(
        {{{"name", "main"}, {"path", "/srv/b"}, {"encrypted", true}, {"backups", 2}, {"error", nullptr}},
         {{"name", "gone"}, {"path", "/x"}, {"encrypted", false}, {"backups", nullptr}, {"error", "no such folder"}}});
    const std::string list = render_backup_view(View::BackupRepoTable, repos);
    EXPECT_NE(list.find("error: no such folder"), std::string::npos) << list;
}

TEST(BackupCommands, PruneThatKeepsNothingIsRefusedInTheCliWords) {
    const auto outcome = parse_command_line({"backup", "prune", "main", "--dry-run"});
    EXPECT_EQ(outcome.exit_code, 2);
    EXPECT_NE(outcome.err.find("--keep-last"), std::string::npos) << outcome.err;
    EXPECT_EQ(outcome.err.find("keep_last"), std::string::npos) << outcome.err;  // not the API's field name
    EXPECT_EQ(parse({"backup", "prune", "main", "--keep-daily", "7"}).request,
              request("POST", "/api/v1/backup-repositories/main/prune", json{{"keep_daily", 7}}));
}

}  // namespace
}  // namespace corral::cli
