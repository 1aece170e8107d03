#include "engine/vm_handoff.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "engine/process.h"
#include "engine_test_support.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::engine {
namespace {

namespace fs = std::filesystem;
using storage::qcow2::CreateOptions;
using storage::qcow2::Qcow2Image;

CreateOptions options(const std::string& backing, std::optional<std::string> backing_format) {
    CreateOptions options;
    options.size = 1 << 20;
    options.backing_file = backing;
    options.backing_format = std::move(backing_format);
    return options;
}

void make_raw(const fs::path& path) {
    std::ofstream(path).close();
    fs::resize_file(path, 1 << 20);
}

// QEMU gets every file of a disk's chain as a descriptor, so corrald must find them all: names
// relative to the naming image's folder, a missing backing format probed.
TEST(ImageChain, FollowsBackingFilesTopFirst) {
    testing::TestDir dir;
    make_raw(dir.path("base.raw"));
    ASSERT_TRUE(Qcow2Image::create(dir.path("mid.qcow2"), options("base.raw", "raw")));
    ASSERT_TRUE(Qcow2Image::create(dir.path("top.qcow2"),
                                   options(dir.path("mid.qcow2").string(), std::nullopt)));
    auto chain = image_chain(dir.path("top.qcow2"), "qcow2");
    ASSERT_TRUE(chain) << chain.error().describe();
    ASSERT_EQ(chain->size(), 3u);
    EXPECT_EQ((*chain)[0].path, dir.path("top.qcow2"));
    EXPECT_EQ((*chain)[0].format, "qcow2");
    EXPECT_EQ((*chain)[1].path, dir.path("mid.qcow2"));
    EXPECT_EQ((*chain)[1].format, "qcow2");  // probed: top.qcow2 records no backing format
    EXPECT_EQ((*chain)[2].path, dir.path("base.raw"));
    EXPECT_EQ((*chain)[2].format, "raw");
    // The version decides whether QEMU may use lazy refcounts on it (3 only).
    EXPECT_EQ((*chain)[0].qcow2_version, 3u);
    EXPECT_EQ((*chain)[2].qcow2_version, 0u);
    auto old_options = options("", std::nullopt);
    old_options.version = 2;
    ASSERT_TRUE(Qcow2Image::create(dir.path("old.qcow2"), old_options));
    auto old = image_chain(dir.path("old.qcow2"), "qcow2");
    ASSERT_TRUE(old) << old.error().describe();
    EXPECT_EQ(old->at(0).qcow2_version, 2u);

    auto raw = image_chain(dir.path("base.raw"), "raw");
    ASSERT_TRUE(raw);
    EXPECT_EQ(raw->size(), 1u);
}

TEST(ImageChain, ALoopEndsWithAnErrorNamingTheDisk) {
    testing::TestDir dir;
    ASSERT_TRUE(Qcow2Image::create(dir.path("a.qcow2"), options("a.qcow2", "qcow2")));
    auto chain = image_chain(dir.path("a.qcow2"), "qcow2");
    ASSERT_FALSE(chain);
    EXPECT_EQ(chain.error().errno_value(), EINVAL);
    EXPECT_NE(chain.error().message().find("more than 16 backing files"), std::string::npos)
        << chain.error().message();
}

TEST(ImageChain, ASymlinkIsNotFollowed) {
    testing::TestDir dir;
    make_raw(dir.path("real.raw"));
    fs::create_symlink(dir.path("real.raw"), dir.path("link.raw"));
    auto fd = open_for_vm(dir.path("link.raw"), O_RDONLY);
    ASSERT_FALSE(fd);
    EXPECT_EQ(fd.error().errno_value(), ELOOP);
}

TEST(VmHandoff, SocketsAreRootOnlyAndTheKernelCopyIsTheGroups) {
    testing::TestDir dir;
    auto socket = listen_vm_socket(dir.path("console.sock"));
    ASSERT_TRUE(socket) << socket.error().describe();
    struct stat info {};
    ASSERT_EQ(::stat(dir.path("console.sock").c_str(), &info), 0);
    EXPECT_TRUE(S_ISSOCK(info.st_mode));
    EXPECT_EQ(info.st_mode & 07777, 0600u);

    ASSERT_TRUE(write_file_atomic(dir.path("vmlinuz"), "kernel bytes"));
    ASSERT_TRUE(copy_for_vm(dir.path("vmlinuz"), dir.path("kernel"), ::getegid()));
    ASSERT_EQ(::stat(dir.path("kernel").c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 07777, 0440u);
    EXPECT_EQ(info.st_gid, ::getegid());
    EXPECT_EQ(read_text_file(dir.path("kernel")).value(), "kernel bytes");
    // A second start replaces the copy.
    ASSERT_TRUE(copy_for_vm(dir.path("vmlinuz"), dir.path("kernel"), ::getegid()));

    HandedFds fds;
    EXPECT_EQ(fds.add(std::move(*socket)), 3);
    EXPECT_EQ(fds.add(UniqueFd(::dup(0))), 4);
    EXPECT_EQ(fds.raw().size(), 2u);
}

}  // namespace
}  // namespace corral::engine
