#include "base/private_file.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

namespace corral {
namespace {

namespace fs = std::filesystem;

class PrivateFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/corral-private-file-XXXXXX";
        m_dir = ::mkdtemp(pattern);
        std::ofstream(m_dir / "victim") << "precious";
    }
    void TearDown() override { fs::remove_all(m_dir); }
    std::string victim() const {
        std::ifstream in(m_dir / "victim");
        return std::string((std::istreambuf_iterator<char>(in)), {});
    }
    fs::path m_dir;
};

TEST(RandomGuid, IsAVersion4GuidAndNeverTheSame) {
    std::set<std::string> seen;
    for (int i = 0; i < 100; ++i) {
        const std::string guid = random_guid();
        ASSERT_TRUE(is_guid(guid)) << guid;
        EXPECT_EQ(guid[14], '4') << guid;                                           // version 4
        EXPECT_NE(std::string("89ab").find(guid[19]), std::string::npos) << guid;  // variant 10xx
        seen.insert(guid);
    }
    EXPECT_EQ(seen.size(), 100u);
}

TEST(RandomGuid, IsGuidTakesOnlyTheEightFourFourFourTwelveShape) {
    EXPECT_TRUE(is_guid("0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d"));
    EXPECT_TRUE(is_guid("0A1B2C3D-4E5F-4A6B-8C7D-8E9F0A1B2C3D"));
    EXPECT_FALSE(is_guid(""));
    EXPECT_FALSE(is_guid("0a1b2c3d4e5f4a6b8c7d8e9f0a1b2c3d"));        // no dashes
    EXPECT_FALSE(is_guid("0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3"));     // one digit short
    EXPECT_FALSE(is_guid("0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3g"));    // not hex
    EXPECT_FALSE(is_guid("0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d\n"));  // more after it
}

TEST_F(PrivateFileTest, TemporaryNamesAreHiddenUniqueAndBesideTheTarget) {
    std::set<std::string> names;
    for (int i = 0; i < 100; ++i) {
        fs::path name = temporary_path_for((m_dir / "disk.raw").string());
        EXPECT_EQ(name.parent_path(), m_dir);
        EXPECT_TRUE(name.filename().string().starts_with(".disk.raw.corral-tmp-")) << name;
        names.insert(name.string());
    }
    EXPECT_EQ(names.size(), 100u);
}

TEST_F(PrivateFileTest, ExclusiveCreationNeverFollowsASymlink) {
    const fs::path link = m_dir / "new";
    fs::create_symlink(m_dir / "victim", link);
    auto created = create_exclusive(link.string(), 0600);
    ASSERT_FALSE(created);
    EXPECT_EQ(created.error().errno_value(), EEXIST);
    EXPECT_EQ(victim(), "precious");
    EXPECT_TRUE(fs::is_symlink(link));  // and it is left as it was

    mode_t old = ::umask(0);
    auto fresh = create_exclusive((m_dir / "fresh").string(), 0600);
    ::umask(old);
    ASSERT_TRUE(fresh) << fresh.error().describe();
    struct stat st {};
    ASSERT_EQ(::stat((m_dir / "fresh").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
}

TEST_F(PrivateFileTest, AtomicWriteReplacesASymlinkInsteadOfWritingThroughIt) {
    const fs::path pid = m_dir / "vm.pid";
    fs::create_symlink(m_dir / "victim", pid);
    ASSERT_TRUE(write_file_atomically(pid.string(), "1234\n", 0600));
    EXPECT_EQ(victim(), "precious");
    EXPECT_FALSE(fs::is_symlink(pid));
    std::ifstream in(pid);
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), "1234\n");
    EXPECT_EQ(fs::status(pid).permissions(), fs::perms::owner_read | fs::perms::owner_write);
    for (const auto& entry : fs::directory_iterator(m_dir))  // no temporary file left behind
        EXPECT_EQ(entry.path().filename().string().find("corral-tmp"), std::string::npos)
            << entry.path();
}

}  // namespace
}  // namespace corral
