#include "daemon/open_beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace corral::daemon {

int open_beneath(int dirfd, const std::filesystem::path& relative, int flags, uint64_t resolve, mode_t mode) {
    open_how how{};
    how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | resolve;
    int fd;
    do {
        fd = static_cast<int>(::syscall(SYS_openat2, dirfd, relative.c_str(), &how, sizeof(how)));
    } while (fd < 0 && (errno == EINTR || errno == EAGAIN));
    return fd;
}

}  // namespace corral::daemon
