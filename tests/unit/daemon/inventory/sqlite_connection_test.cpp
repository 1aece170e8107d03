#include "daemon/inventory/sqlite_connection.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_dir.h"

namespace corral::inventory {
namespace {

using ::testing::HasSubstr;

TEST(SqliteConnection, BoundValuesRoundTripWithoutInterpretation) {
    testing::TestDir dir;
    auto db = Connection::open(dir.path("c.db"));
    ASSERT_TRUE(db) << db.error().message();
    ASSERT_TRUE(db->exec("CREATE TABLE t (s TEXT, i INTEGER, d REAL)"));

    // A value that would break string-built SQL goes in and comes out as bytes.
    const std::string hostile = "x'); DROP TABLE t; --\n\xc3\xa9";
    auto insert = db->prepare("INSERT INTO t (s, i, d) VALUES (?1, ?2, ?3)");
    ASSERT_TRUE(insert);
    ASSERT_TRUE(insert->bind_all(hostile, std::int64_t{-5} << 40, 0.25));
    ASSERT_TRUE(insert->run());
    EXPECT_EQ(db->changes(), 1);
    EXPECT_EQ(db->last_insert_rowid(), 1);

    auto select = db->prepare("SELECT s, i, d FROM t");
    ASSERT_TRUE(select);
    auto row = select->step();
    ASSERT_TRUE(row && *row);
    EXPECT_EQ(select->column_text(0), hostile);
    EXPECT_EQ(select->column_int64(1), std::int64_t{-5} << 40);
    EXPECT_EQ(select->column_double(2), 0.25);
    auto end = select->step();
    ASSERT_TRUE(end);
    EXPECT_FALSE(*end);
}

TEST(SqliteConnection, ErrorsNameTheStatementAndSqlitesReason) {
    testing::TestDir dir;
    auto db = Connection::open(dir.path("c.db"));
    ASSERT_TRUE(db);
    auto bad = db->prepare("SELEC 1");
    ASSERT_FALSE(bad);
    EXPECT_THAT(bad.error().message(), HasSubstr("preparing \"SELEC 1\""));
    EXPECT_THAT(bad.error().message(), HasSubstr("syntax error"));

    ASSERT_TRUE(db->exec("CREATE TABLE t (k TEXT PRIMARY KEY)"));
    auto insert = db->prepare("INSERT INTO t VALUES (?1)");
    ASSERT_TRUE(insert);
    ASSERT_TRUE(insert->bind_all("a"));
    ASSERT_TRUE(insert->run());
    auto again = insert->run();  // same bound value: a duplicate key
    ASSERT_FALSE(again);
    EXPECT_TRUE(insert->failed_on_unique());
    EXPECT_THAT(again.error().message(), HasSubstr("UNIQUE constraint failed"));
}

TEST(SqliteConnection, OpeningInAMissingFolderFails) {
    testing::TestDir dir;
    auto db = Connection::open(dir.path("missing/c.db"));
    ASSERT_FALSE(db);
    EXPECT_THAT(db.error().message(), HasSubstr("missing/c.db"));
}

TEST(SqliteConnection, QueryInt64) {
    testing::TestDir dir;
    auto db = Connection::open(dir.path("c.db"));
    ASSERT_TRUE(db);
    auto version = db->query_int64("PRAGMA user_version");
    ASSERT_TRUE(version);
    EXPECT_EQ(*version, 0);
}

}  // namespace
}  // namespace corral::inventory
