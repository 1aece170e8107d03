#include "vmm/boot/file.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace corral::vmm {
namespace {

namespace fs = std::filesystem;

class KernelFile : public ::testing::Test {
protected:
    void SetUp() override {
        std::string pattern = (fs::temp_directory_path() / "corral-boot-file-XXXXXX").string();
        ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
        m_dir = pattern;
    }
    void TearDown() override { fs::remove_all(m_dir); }

    std::string write(const std::string& name, size_t size) {
        fs::path path = m_dir / name;
        std::ofstream out(path, std::ios::binary);
        for (size_t i = 0; i < size; ++i)
            out.put(static_cast<char>(i));
        return path.string();
    }

    fs::path m_dir;
};

TEST_F(KernelFile, ReadsWholeFile) {
    auto bytes = read_file(write("k", 5000), 1 << 20, "kernel");
    ASSERT_TRUE(bytes) << bytes.error().describe();
    ASSERT_EQ(bytes->size(), 5000u);
    EXPECT_EQ((*bytes)[4999], static_cast<uint8_t>(4999));
}

TEST_F(KernelFile, MissingFileNamesPathAndReason) {
    std::string path = (m_dir / "nope").string();
    auto bytes = read_file(path, 1 << 20, "kernel");
    ASSERT_FALSE(bytes);
    EXPECT_EQ(bytes.error().describe(),
              "cannot open kernel " + path + ": No such file or directory");
}

TEST_F(KernelFile, RejectsDirectory) {
    auto bytes = read_file(m_dir.string(), 1 << 20, "initrd");
    ASSERT_FALSE(bytes);
    EXPECT_EQ(bytes.error().message(), "initrd " + m_dir.string() + " is a directory");
}

TEST_F(KernelFile, RejectsDeviceFile) {
    auto bytes = read_file("/dev/null", 1 << 20, "kernel");
    ASSERT_FALSE(bytes);
    EXPECT_EQ(bytes.error().message(), "kernel /dev/null is not a regular file");
}

TEST_F(KernelFile, RejectsFileOverTheLimit) {
    std::string path = write("big", 3 * 1024 * 1024 + 1);
    auto bytes = read_file(path, 2 * 1024 * 1024, "kernel");
    ASSERT_FALSE(bytes);
    EXPECT_EQ(bytes.error().message(), "kernel " + path + " is 4 MiB, larger than the 2 MiB limit");
}

}  // namespace
}  // namespace corral::vmm
