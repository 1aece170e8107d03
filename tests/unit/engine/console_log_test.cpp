#include "engine/console_log.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace corral::engine {
namespace {

namespace fs = std::filesystem;

class ConsoleLogTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/corral-console-log-XXXXXX";
        m_dir = ::mkdtemp(pattern);
        m_log = m_dir / "console.log";
    }
    void TearDown() override { fs::remove_all(m_dir); }
    fs::path rotated() const { return fs::path(m_log.string() + ".1"); }

    fs::path m_dir, m_log;
};

TEST_F(ConsoleLogTest, CreatedPrivateAndEmptyWithoutFollowingASymlink) {
    const fs::path victim = m_dir / "victim";
    std::ofstream(victim) << "precious";
    fs::create_symlink(victim, m_log);
    EXPECT_FALSE(create_console_log(m_log));
    std::ifstream in(victim);
    EXPECT_EQ(std::string((std::istreambuf_iterator<char>(in)), {}), "precious");
    fs::remove(m_log);

    std::ofstream(m_log) << "the previous run";
    std::ofstream(rotated()) << "and before";
    mode_t old = ::umask(0);
    ASSERT_TRUE(create_console_log(m_log));
    ::umask(old);
    struct stat st {};
    ASSERT_EQ(::stat(m_log.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(st.st_size, 0);
    EXPECT_FALSE(fs::exists(rotated()));
}

TEST_F(ConsoleLogTest, TheTailOfAHugeLogIsReadAlone) {
    // 300 MiB (sparse) and a last line: only the last bytes are read.
    { std::ofstream(m_log) << ""; }
    fs::resize_file(m_log, 300ull << 20);
    std::ofstream(m_log, std::ios::app) << "the last line\n";
    const std::string tail = read_console_log_tail(m_log, 64 * 1024);
    EXPECT_EQ(tail.size(), 64u * 1024);
    EXPECT_TRUE(tail.ends_with("the last line\n"));
}

TEST_F(ConsoleLogTest, TheTailContinuesIntoTheRotatedFile) {
    std::ofstream(rotated()) << "older\n";
    std::ofstream(m_log) << "newer\n";
    EXPECT_EQ(read_console_log_tail(m_log, 100), "older\nnewer\n");
    EXPECT_EQ(read_console_log_tail(m_log, 8), "r\nnewer\n");
    EXPECT_EQ(read_console_log_tail(m_dir / "none.log", 100), "");
}

TEST_F(ConsoleLogTest, RotationKeepsTheLastBytesAndEmptiesTheLog) {
    std::string text;
    for (int i = 0; i < 1000; ++i)
        text += "line " + std::to_string(i) + "\n";
    std::ofstream(m_log) << text;
    auto small = rotate_console_log(m_log, text.size());
    ASSERT_TRUE(small);
    EXPECT_FALSE(*small);  // not past the limit: left alone
    auto rotated_now = rotate_console_log(m_log, 1000);
    ASSERT_TRUE(rotated_now) << rotated_now.error().describe();
    EXPECT_TRUE(*rotated_now);
    EXPECT_EQ(fs::file_size(m_log), 0u);
    std::ifstream in(rotated());
    std::string kept((std::istreambuf_iterator<char>(in)), {});
    EXPECT_EQ(kept, text.substr(text.size() - 1000));
    struct stat st {};
    ASSERT_EQ(::stat(rotated().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
}

}  // namespace
}  // namespace corral::engine
