#include "net/persistent_tap.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "private_netns.h"

namespace corral::net {
namespace {

/// In a child process that keeps our uid but drops every capability (as corral-shim starts
/// corral-vmm): can it attach to the tap `name`? The child inherits the calling thread's
/// network namespace.
bool attachable_without_capabilities(const std::string& name) {
    pid_t child = ::fork();
    if (child == 0) {
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct none[2] = {};
        if (::syscall(SYS_capset, &header, none) != 0)
            _exit(2);
        _exit(open_tap(name) ? 0 : 1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/// In a child process that opens /dev/net/tun as root (it is 0600 on some hosts) and then
/// becomes `uid` (no capability left): can it attach that descriptor to the tap `name`?
bool attachable_as(const std::string& name, uid_t uid) {
    pid_t child = ::fork();
    if (child == 0) {
        int fd = ::open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (fd < 0 || ::setgroups(0, nullptr) != 0 || ::setresgid(uid, uid, uid) != 0 ||
            ::setresuid(uid, uid, uid) != 0)
            _exit(2);
        ifreq request{};
        std::memcpy(request.ifr_name, name.data(), name.size());
        request.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
        _exit(::ioctl(fd, TUNSETIFF, &request) == 0 ? 0 : 1);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

// A VM monitor without CAP_NET_ADMIN opens its tap by name only while the tap is owned by its
// uid (corral-vmm under the native engine); a tap owned by another uid stays closed to it. A
// tap corrald creates is owned by corrald's uid from the start (ownerless, anyone could attach).
TEST(PersistentTap, AnOwnedTapOpensWithoutCapabilities) {
    if (auto reason = testing::netns_skip_reason())
        GTEST_SKIP() << *reason;
    UniqueFd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(home.valid());
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    auto created = create_persistent_tap("cowned0");
    bool by_creator = attachable_without_capabilities("cowned0");
    bool by_another_user = attachable_as("cowned0", 0x70000000u + 4243);
    auto other = set_tap_owner("cowned0", 0x70000000u + 4242, 0x70000000u + 4242);
    bool owned_by_other = attachable_without_capabilities("cowned0");
    auto owned = set_tap_owner("cowned0", ::geteuid(), ::getegid());
    bool owned_again = attachable_without_capabilities("cowned0");
    auto opened = open_tap("cowned0");
    auto missing = open_tap("cnothere0");
    (void)delete_persistent_tap("cowned0");
    ::setns(home.get(), CLONE_NEWNET);

    ASSERT_TRUE(created) << created.error().describe();
    EXPECT_TRUE(by_creator) << "a tap we create is ours";
    EXPECT_FALSE(by_another_user) << "a tap corrald creates must not be open to any local user";
    ASSERT_TRUE(other) << other.error().describe();
    EXPECT_FALSE(owned_by_other) << "a tap owned by another uid needs CAP_NET_ADMIN";
    ASSERT_TRUE(owned) << owned.error().describe();
    EXPECT_TRUE(owned_again);
    EXPECT_TRUE(opened) << opened.error().describe();
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().errno_value(), ENOENT);
    EXPECT_EQ(missing.error().message(), "no network device named cnothere0");
}

}  // namespace
}  // namespace corral::net
