#include "storage/backup/repository.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "backup_test_util.h"
#include "storage/backup/backup_key.h"

namespace corral::storage::backup {
namespace {

using testing::file_listing;
using testing::TestDir;

TEST(Repository, CreateMakesAnOpenableRepositoryAndRefusesANonEmptyFolder) {
    TestDir dir;
    const std::string path = dir.path("repo");
    auto created = Repository::create(path, {});
    ASSERT_TRUE(created) << created.error().describe();
    EXPECT_TRUE(std::filesystem::exists(path + "/config.json"));
    EXPECT_TRUE(std::filesystem::is_directory(path + "/chunks/ff"));
    auto repo = Repository::open(path, std::nullopt);
    ASSERT_TRUE(repo) << repo.error().describe();
    EXPECT_EQ(repo->chunk_size(), 4u << 20);
    EXPECT_FALSE(repo->encrypted());

    auto again = Repository::create(path, {});
    ASSERT_FALSE(again);
    EXPECT_NE(again.error().message().find("is not empty"), std::string::npos) << again.error().message();
    EXPECT_TRUE(std::filesystem::exists(path + "/config.json"));

    // An empty folder (made by an administrator) is fine.
    std::filesystem::create_directory(dir.path("empty"));
    EXPECT_TRUE(Repository::create(dir.path("empty"), {}));
}

TEST(Repository, BadOptionsNameTheFieldAndLeaveNothing) {
    TestDir dir;
    auto r = Repository::create(dir.path("a"), RepositoryCreateOptions{.chunk_size = 1000});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("chunk_size 1000 is invalid"), std::string::npos);
    r = Repository::create(dir.path("a"), RepositoryCreateOptions{.zstd_level = 40});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("zstd_level 40"), std::string::npos);
    r = Repository::create(dir.path("a"), RepositoryCreateOptions{.key_file = dir.path("nokey")});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("key file"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(dir.path("a")));

    std::ofstream(dir.path("short")) << "too short";
    r = Repository::create(dir.path("a"), RepositoryCreateOptions{.key_file = dir.path("short")});
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("allowed: 32 to 4096"), std::string::npos) << r.error().message();
    EXPECT_FALSE(std::filesystem::exists(dir.path("a")));
}

TEST(Repository, OpeningSomethingElseSaysWhatItIs) {
    TestDir dir;
    auto r = Repository::open(dir.path("missing"), std::nullopt);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::NotFound);
    EXPECT_NE(r.error().message().find("is not a backup repository"), std::string::npos);
}

TEST(Repository, KeysAreCheckedBeforeAnythingIsWritten) {
    TestDir dir;
    ASSERT_TRUE(create_key_file(dir.path("key")));
    ASSERT_TRUE(create_key_file(dir.path("other")));
    struct stat st {};
    ASSERT_EQ(::stat(dir.path("key").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    const std::string path = dir.path("repo");
    ASSERT_TRUE(Repository::create(path, RepositoryCreateOptions{.key_file = dir.path("key")}));
    const auto before = file_listing(path);

    auto wrong = Repository::open(path, dir.path("other"));
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message().find("is not the key of repository"), std::string::npos)
        << wrong.error().message();
    auto none = Repository::open(path, std::nullopt);
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message().find("is encrypted: give its key file"), std::string::npos);
    EXPECT_EQ(file_listing(path), before);

    auto right = Repository::open(path, dir.path("key"));
    ASSERT_TRUE(right) << right.error().describe();
    EXPECT_TRUE(right->encrypted());

    ASSERT_TRUE(Repository::create(dir.path("plain"), {}));
    auto extra = Repository::open(dir.path("plain"), dir.path("key"));
    ASSERT_FALSE(extra);
    EXPECT_NE(extra.error().message().find("is not encrypted"), std::string::npos);
}

TEST(Repository, EncryptedChunkNamesAreKeyedAndChunksRoundTrip) {
    TestDir dir;
    ASSERT_TRUE(create_key_file(dir.path("key")));
    ASSERT_TRUE(Repository::create(dir.path("enc"), RepositoryCreateOptions{.key_file = dir.path("key")}));
    ASSERT_TRUE(Repository::create(dir.path("plain"), {}));
    auto enc = Repository::open(dir.path("enc"), dir.path("key"));
    auto plain = Repository::open(dir.path("plain"), std::nullopt);
    ASSERT_TRUE(enc && plain);
    std::vector<uint8_t> data(100000, 'x');
    const std::string keyed = enc->chunk_name(data), hashed = plain->chunk_name(data);
    // SHA-256 of 100000 'x' is public knowledge; the keyed name must not be it.
    EXPECT_NE(keyed, hashed);
    EXPECT_TRUE(is_chunk_name(keyed));
    for (Repository* repo : {&*enc, &*plain}) {
        const std::string name = repo->chunk_name(data);
        auto written = repo->put_chunk(name, data);
        ASSERT_TRUE(written) << written.error().describe();
        EXPECT_GT(*written, 0u);
        EXPECT_EQ(*repo->put_chunk(name, data), 0u);  // already there: not written again
        ASSERT_TRUE(repo->sync_chunks());
        auto back = repo->read_chunk(name);
        ASSERT_TRUE(back) << back.error().describe();
        EXPECT_EQ(*back, data);
    }
}

TEST(Repository, GivenIdsCannotLeaveTheRepository) {
    EXPECT_FALSE(validate_backup_id("../../etc/passwd"));
    EXPECT_FALSE(validate_backup_id(".hidden"));
    EXPECT_FALSE(validate_backup_id(""));
    EXPECT_FALSE(validate_backup_id("a/b"));
    EXPECT_TRUE(validate_backup_id("web-20261206T101500Z-a1b2c3"));
}

}  // namespace
}  // namespace corral::storage::backup
