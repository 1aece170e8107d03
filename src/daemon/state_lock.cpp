#include "daemon/state_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <fmt/format.h>

namespace corral::daemon {

Result<StateLock> StateLock::acquire(const std::filesystem::path& state_dir) {
    const std::filesystem::path file = state_dir / "corrald.lock";
    // O_CLOEXEC: the VM monitors corrald spawns must not inherit the lock, or a VM that outlives
    // corrald would keep the next corrald from starting.
    UniqueFd fd(::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640));
    if (!fd.valid()) return fail_errno(fmt::format("cannot open {}", file.native()));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
        const int error = errno;
        if (error != EWOULDBLOCK) return fail(fmt::format("cannot lock {}", file.native()), error);
        // The holder wrote its pid when it took the lock; say who it is when we can.
        char text[32] = {};
        const ssize_t length = ::pread(fd.get(), text, sizeof text - 1, 0);
        std::string holder = length > 0 ? std::string(text, static_cast<size_t>(length)) : std::string();
        while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
        return fail(fmt::format("another corrald{} is already using the state folder {}; nothing was touched. "
                                "Stop that one first, or give this one its own --state-dir",
                                holder.empty() ? "" : " (pid " + holder + ")", state_dir.native()),
                    0);
    }
    const std::string pid = fmt::format("{}\n", ::getpid());
    if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size()))
        return fail_errno(fmt::format("cannot write our pid to {}", file.native()));
    return StateLock(std::move(fd));
}

}  // namespace corral::daemon
