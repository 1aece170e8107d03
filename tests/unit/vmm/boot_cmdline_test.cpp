#include "vmm/boot/cmdline.h"

#include <gtest/gtest.h>

#include <string>

#include "vmm/arch/x86_64/layout.h"

namespace corral::vmm {
namespace {

using namespace x86;

TEST(Cmdline, WritesNulTerminated) {
    auto memory = GuestMemory::create(4 * MiB);
    ASSERT_TRUE(memory);
    std::memset(memory->host_pointer(k_cmdline_address, 64), 'x', 64);
    auto location = write_cmdline(*memory, "console=ttyS0 quiet", 2047);
    ASSERT_TRUE(location) << location.error().message();
    EXPECT_EQ(location->address, k_cmdline_address);
    EXPECT_EQ(location->length, 19u);
    const char* guest = reinterpret_cast<const char*>(memory->host_pointer(k_cmdline_address, 20));
    EXPECT_STREQ(guest, "console=ttyS0 quiet");
}

TEST(Cmdline, AcceptsEmptyAndExactlyTheLimit) {
    EXPECT_TRUE(validate_cmdline("", 2047));
    EXPECT_TRUE(validate_cmdline(std::string(2047, 'a'), 2047));
}

TEST(Cmdline, RejectsTooLong) {
    auto result = validate_cmdline(std::string(2048, 'a'), 2047);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().message(),
              "kernel command line is 2048 bytes; this kernel accepts at most 2047 (cmdline_size)");
}

TEST(Cmdline, LimitNeverExceedsTheReservedArea) {
    // A kernel header claiming a 4 GiB limit still gets only the space layout.h reserves.
    auto result = validate_cmdline(std::string(k_cmdline_max_size, 'a'), 0xffffffff);
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("at most 65535"), std::string::npos);
}

TEST(Cmdline, RejectsNul) {
    using namespace std::string_literals;
    auto result = validate_cmdline("console=ttyS0\0root=/dev/vda"s, 2047);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().message(), "kernel command line contains a NUL byte at offset 13");
}

TEST(Cmdline, WriteValidatesFirst) {
    auto memory = GuestMemory::create(4 * MiB);
    ASSERT_TRUE(memory);
    EXPECT_FALSE(write_cmdline(*memory, std::string(100, 'a'), 99));
    EXPECT_EQ(memory->host_pointer(k_cmdline_address, 1)[0], 0);
}

}  // namespace
}  // namespace corral::vmm
