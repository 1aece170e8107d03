#include "engine/vm_user.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>

#include <fmt/format.h>

#include "engine/process.h"

namespace corral::engine {

namespace {

using Clock = std::chrono::steady_clock;
/// A uid handed out stays reserved this long: the shim switches to it right after its start,
/// after which the /proc scan sees it.
constexpr auto k_reservation = std::chrono::minutes(1);

/// The real uids of all processes in the reserved range.
std::set<uid_t> vm_uids_in_use() {
    std::set<uid_t> used;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string name = entry.path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        auto status = read_text_file(entry.path() / "status");
        if (!status)
            continue;  // ended meanwhile
        size_t at = status->find("\nUid:");
        unsigned long uid = 0;
        if (at != std::string::npos && std::sscanf(status->c_str() + at + 5, "%lu", &uid) == 1 &&
            is_vm_uid(static_cast<uid_t>(uid)))
            used.insert(static_cast<uid_t>(uid));
    }
    return used;
}

}  // namespace

Result<VmUser> choose_vm_user() {
    VmUser user;
    if (::geteuid() != 0) {
        user.why_not = fmt::format(
            "corrald runs as uid {}, not root, so the VM process keeps that uid (it still gets "
            "no_new_privs and QEMU's seccomp sandbox)",
            ::geteuid());
        return user;
    }
    static std::mutex mutex;
    static std::map<uid_t, Clock::time_point> handed_out;
    std::lock_guard lock(mutex);
    auto now = Clock::now();
    std::erase_if(handed_out,
                  [&](const auto& entry) { return now - entry.second > k_reservation; });
    std::set<uid_t> used = vm_uids_in_use();
    // A random start: a uid a previous VM had is not handed out again at once (nothing it owned
    // should remain, but this keeps a mistake from becoming a leak between VMs).
    static std::mt19937 random{std::random_device{}()};
    uid_t start = std::uniform_int_distribution<uid_t>(0, k_vm_uid_count - 1)(random);
    for (uid_t i = 0; i < k_vm_uid_count; ++i) {
        uid_t uid = k_vm_uid_first + (start + i) % k_vm_uid_count;
        if (used.contains(uid) || handed_out.contains(uid))
            continue;
        handed_out[uid] = now;
        user.switch_user = true;
        user.uid = uid;
        user.gid = static_cast<gid_t>(uid);
        return user;
    }
    return fail(fmt::format("all {} VM uids from {} are in use by running VMs", k_vm_uid_count,
                            k_vm_uid_first),
                EAGAIN);
}

}  // namespace corral::engine
