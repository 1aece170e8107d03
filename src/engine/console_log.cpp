#include "engine/console_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

#include "base/private_file.h"
#include "base/unique_fd.h"

namespace corral::engine {
namespace {

std::filesystem::path rotated(const std::filesystem::path& log) {
    std::filesystem::path path = log;
    path += ".1";
    return path;
}

/// Appends up to `max_bytes` from the end of `path` to the front of `tail`.
void prepend_tail(const std::filesystem::path& path, size_t max_bytes, std::string& tail) {
    if (max_bytes == 0)
        return;
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
    struct stat st {};
    if (!fd.valid() || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode))
        return;
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    const size_t want = static_cast<size_t>(std::min<uint64_t>(size, max_bytes));
    std::string chunk(want, '\0');
    size_t done = 0;
    while (done < want) {
        ssize_t n = ::pread(fd.get(), chunk.data() + done, want - done,
                            static_cast<off_t>(size - want + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        done += static_cast<size_t>(n);
    }
    chunk.resize(done);
    tail.insert(0, chunk);
}

}  // namespace

Result<void> create_console_log(const std::filesystem::path& log) {
    UniqueFd fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd.valid())
        return fail_errno(fmt::format("creating console log {}", log.string()));
    if (::fchmod(fd.get(), 0600) != 0)
        return fail_errno(fmt::format("chmod of console log {}", log.string()));
    std::error_code ignored;
    std::filesystem::remove(rotated(log), ignored);  // the previous run's
    return {};
}

std::string read_console_log_tail(const std::filesystem::path& log, size_t max_bytes) {
    std::string tail;
    prepend_tail(log, max_bytes, tail);
    if (tail.size() < max_bytes)
        prepend_tail(rotated(log), max_bytes - tail.size(), tail);
    return tail;
}

Result<bool> rotate_console_log(const std::filesystem::path& log, uint64_t max_bytes) {
    UniqueFd source(::open(log.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
    if (!source.valid()) {
        if (errno == ENOENT)
            return false;
        return fail_errno(fmt::format("opening console log {}", log.string()));
    }
    struct stat st {};
    if (::fstat(source.get(), &st) != 0)
        return fail_errno(fmt::format("stat of console log {}", log.string()));
    if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_size) <= max_bytes)
        return false;
    const std::string target = rotated(log).string();
    const std::string temporary = temporary_path_for(target);
    UniqueFd copy = TRY(create_exclusive(temporary, 0600));
    auto undo = [&](Error error) {
        ::unlink(temporary.c_str());
        return fail(std::move(error));
    };
    // Only the last max_bytes: the rotated file is bounded too, however large the log had grown
    // (while no corrald watched it).
    const off_t size = st.st_size;
    off_t in = size - static_cast<off_t>(max_bytes);
    while (in < size) {
        ssize_t n = ::copy_file_range(source.get(), &in, copy.get(), nullptr,
                                      static_cast<size_t>(size - in), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return undo(Error::from_errno(fmt::format("copying console log {}", log.string())));
        if (n == 0)
            break;
    }
    if (::rename(temporary.c_str(), target.c_str()) != 0)
        return undo(Error::from_errno(fmt::format("renaming to {}", target)));
    if (::ftruncate(source.get(), 0) != 0)
        return fail_errno(fmt::format("truncating console log {}", log.string()));
    return true;
}

}  // namespace corral::engine
