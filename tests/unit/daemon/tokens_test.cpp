#include "daemon/tokens.h"

#include <unistd.h>

#include <filesystem>
#include <set>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "daemon/inventory/sqlite_inventory.h"

namespace corral::daemon {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(TokenSecretTest, IsLongRandomAndUrlSafe) {
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        const std::string secret = generate_token_secret();
        // "corral_" + 43 base64url characters = 32 random bytes.
        EXPECT_THAT(secret, MatchesRegex("corral_[A-Za-z0-9_-]{43}"));
        seen.insert(secret);
    }
    EXPECT_EQ(seen.size(), 100u);
}

TEST(TokenHashTest, IsTheSha256InHex) {
    // SHA-256("abc"), FIPS 180-2 appendix B.1.
    EXPECT_EQ(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(hash_token("").size(), 64u);
    EXPECT_NE(hash_token("corral_a"), hash_token("corral_b"));
}

TEST(TokenHashTest, ConstantTimeComparison) {
    EXPECT_TRUE(equal_in_constant_time("abc", "abc"));
    EXPECT_FALSE(equal_in_constant_time("abc", "abd"));
    EXPECT_FALSE(equal_in_constant_time("abc", "abcd"));
    EXPECT_TRUE(equal_in_constant_time("", ""));
}

class TokenStoreTest : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = std::filesystem::temp_directory_path() / ("tokens-test-" + std::to_string(::getpid()));
        std::filesystem::remove_all(m_dir);
        auto opened = inventory::SqliteInventory::open((m_dir / "inventory.db").string());
        ASSERT_TRUE(opened) << opened.error().message();
        m_inventory = std::move(*opened);
    }
    void TearDown() override {
        m_inventory.reset();
        std::filesystem::remove_all(m_dir);
    }
    std::filesystem::path m_dir;
    std::unique_ptr<inventory::SqliteInventory> m_inventory;
};

TEST_F(TokenStoreTest, StoresOnlyTheHashAndFindsTheTokenBySecret) {
    auto created = create_token(*m_inventory, "ci");
    ASSERT_TRUE(created) << created.error().message;
    EXPECT_EQ(created->record.name, "ci");
    EXPECT_EQ(created->record.sha256, hash_token(created->secret));
    auto stored = m_inventory->list_tokens().value();
    ASSERT_EQ(stored.size(), 1u);
    EXPECT_NE(stored[0].sha256, created->secret);

    auto found = find_token(*m_inventory, created->secret);
    ASSERT_TRUE(found);
    ASSERT_TRUE(*found);
    EXPECT_EQ((*found)->name, "ci");
    EXPECT_FALSE(find_token(*m_inventory, created->secret + "x").value());
    EXPECT_FALSE(find_token(*m_inventory, "").value());

    ASSERT_TRUE(m_inventory->delete_token("ci"));
    EXPECT_FALSE(find_token(*m_inventory, created->secret).value()) << "a revoked token must not verify";
}

TEST_F(TokenStoreTest, BadAndDuplicateNames) {
    auto bad = create_token(*m_inventory, "Bad_Name");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().status, 400);
    EXPECT_EQ(bad.error().field, "name");
    EXPECT_THAT(bad.error().message, HasSubstr("token name 'Bad_Name' is invalid"));

    ASSERT_TRUE(create_token(*m_inventory, "ci"));
    auto duplicate = create_token(*m_inventory, "ci");
    ASSERT_FALSE(duplicate);
    EXPECT_EQ(duplicate.error().status, 409);
    EXPECT_EQ(duplicate.error().field, "name");
    EXPECT_EQ(duplicate.error().message, "a token named ci already exists");
}

}  // namespace
}  // namespace corral::daemon
