#include "vmm/boot/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>

#include "base/unique_fd.h"
#include "vmm/boot/bytes.h"

namespace corral::vmm {

Result<std::vector<uint8_t>> read_file(const std::string& path, uint64_t max_size,
                                       std::string_view what) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid())
        return fail_errno(fmt::format("cannot open {} {}", what, path));
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0)
        return fail_errno(fmt::format("cannot stat {} {}", what, path));
    if (S_ISDIR(info.st_mode))
        return fail(fmt::format("{} {} is a directory", what, path));
    if (!S_ISREG(info.st_mode))
        return fail(fmt::format("{} {} is not a regular file", what, path));
    const uint64_t size = static_cast<uint64_t>(info.st_size);
    // The size bounds the allocation below, so check it against the caller's limit first.
    if (size > max_size)
        return fail(fmt::format("{} {} is {}, larger than the {} limit", what, path,
                                boot_detail::format_size(size),
                                boot_detail::format_size(max_size)));

    std::vector<uint8_t> bytes(size);
    uint64_t done = 0;
    while (done < size) {
        ssize_t n = ::read(fd.get(), bytes.data() + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno(fmt::format("cannot read {} {}", what, path));
        if (n == 0)
            return fail(fmt::format("{} {} shrank while being read ({} of {} bytes)", what, path,
                                    done, size));
        done += static_cast<uint64_t>(n);
    }
    return bytes;
}

}  // namespace corral::vmm
