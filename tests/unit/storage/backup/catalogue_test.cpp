// The catalogue's schema migration: a catalogue made before the boot check's columns opens, keeps
// its rows, and records boot verdicts (real SQLite files in a temporary folder).
#include "storage/backup/catalogue.h"

#include <gtest/gtest.h>

#include "../test_dir.h"

namespace corral::storage::backup {
namespace {

using storage::testing::TestDir;

/// The backups table as version 1 (before `backup verify --boot`) made it, with one backup.
void make_version_1(const std::string& path) {
    auto db = inventory::Connection::open(path);
    ASSERT_TRUE(db);
    ASSERT_TRUE(db->exec(R"(
CREATE TABLE backups (
  id TEXT PRIMARY KEY, vm TEXT NOT NULL, created INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('writing', 'complete')),
  disks INTEGER NOT NULL DEFAULT 0, logical_bytes INTEGER NOT NULL DEFAULT 0,
  chunks INTEGER NOT NULL DEFAULT 0, new_chunks INTEGER NOT NULL DEFAULT 0,
  new_bytes INTEGER NOT NULL DEFAULT 0, verify_state TEXT NOT NULL DEFAULT '',
  verified_at INTEGER NOT NULL DEFAULT 0, verify_error TEXT NOT NULL DEFAULT '');
CREATE TABLE chunk_refs (backup TEXT NOT NULL REFERENCES backups(id) ON DELETE CASCADE,
  chunk TEXT NOT NULL, PRIMARY KEY (backup, chunk)) WITHOUT ROWID;
INSERT INTO backups (id, vm, created, state, disks, verify_state, verified_at)
  VALUES ('web-1', 'web', 1000, 'complete', 1, 'ok', 1001);
INSERT INTO chunk_refs VALUES ('web-1', 'abc');
)"));
}

int64_t user_version(const std::string& path) {
    auto db = inventory::Connection::open(path);
    auto s = db->prepare("PRAGMA user_version");
    EXPECT_TRUE(s && *s->step());
    return s->column_int64(0);
}

TEST(CatalogueMigration, AnOldCatalogueKeepsItsRowsAndGainsTheBootColumns) {
    TestDir dir;
    const std::string path = dir.path("catalogue.sqlite");
    make_version_1(path);
    auto catalogue = Catalogue::open(path);
    ASSERT_TRUE(catalogue) << catalogue.error().describe();
    auto found = catalogue->find("web-1");
    ASSERT_TRUE(found && *found);
    EXPECT_EQ((*found)->vm, "web");
    EXPECT_EQ((*found)->verify_state, "ok");
    EXPECT_EQ((*found)->boot_state, "");
    EXPECT_EQ((*found)->read_mode, "") << "made before incrementals: how it read is not known";
    EXPECT_EQ(catalogue->referenced_chunks()->count("abc"), 1u);
    ASSERT_TRUE(catalogue->set_boot_verdict("web-1", {.passed = true, .at = 2000, .seconds = 12.5, .error = ""}));
    EXPECT_EQ(user_version(path), 3);

    // Opening it again changes nothing and keeps the verdict.
    auto again = Catalogue::open(path);
    ASSERT_TRUE(again);
    auto booted = again->find("web-1");
    ASSERT_TRUE(booted && *booted);
    EXPECT_EQ((*booted)->boot_state, "passed");
    EXPECT_EQ((*booted)->booted_at, 2000);
    EXPECT_DOUBLE_EQ((*booted)->boot_seconds, 12.5);
}

TEST(CatalogueMigration, ANewCatalogueIsAtTheCurrentVersionAndRecordsAFailure) {
    TestDir dir;
    const std::string path = dir.path("catalogue.sqlite");
    auto catalogue = Catalogue::open(path);
    ASSERT_TRUE(catalogue);
    EXPECT_EQ(user_version(path), 3);
    ASSERT_TRUE(catalogue->begin_backup("db-1", "db", 10));
    ASSERT_TRUE(catalogue->complete_backup(
        "db-1", {},
        {.read_mode = "incremental", .read_bytes = 4096, .base = "db-0", .full_reason = "disk b: no bitmap"}));
    ASSERT_TRUE(
        catalogue->set_boot_verdict("db-1", {.passed = false, .at = 20, .seconds = 0, .error = "no ready line"}));
    auto found = catalogue->find("db-1");
    ASSERT_TRUE(found && *found);
    EXPECT_EQ((*found)->boot_state, "failed");
    EXPECT_EQ((*found)->boot_error, "no ready line");
    EXPECT_EQ((*found)->read_mode, "incremental");
    EXPECT_EQ((*found)->read_bytes, 4096u);
    EXPECT_EQ((*found)->base, "db-0");
    EXPECT_EQ((*found)->full_reason, "disk b: no bitmap");
    auto missing = catalogue->set_boot_verdict("gone", {.passed = true, .at = 1, .seconds = 1, .error = ""});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().errno_value(), ENOENT);
}

}  // namespace
}  // namespace corral::storage::backup
