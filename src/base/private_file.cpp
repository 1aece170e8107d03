#include "base/private_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "base/log.h"

namespace corral {

std::string random_hex(size_t bytes) {
    std::string raw(bytes, '\0');
    size_t done = 0;
    while (done < bytes) {
        ssize_t n = ::getrandom(raw.data() + done, bytes - done, 0);
        if (n < 0 && errno == EINTR)
            continue;
        // getrandom cannot fail on Linux >= 3.17 once the pool is initialised; without it a
        // guessable name would reopen the very hole this exists to close.
        if (n <= 0) {
            log_error("getrandom: {}", std::strerror(errno));
            std::abort();
        }
        done += static_cast<size_t>(n);
    }
    std::string text;
    for (unsigned char c : raw)
        text += fmt::format("{:02x}", c);
    return text;
}

std::string random_guid() {
    std::string hex = random_hex(16);
    hex[12] = '4';                                                    // version 4
    hex[16] = "89ab"[std::stoi(hex.substr(16, 1), nullptr, 16) & 3];  // variant 10xx
    return fmt::format("{}-{}-{}-{}-{}", hex.substr(0, 8), hex.substr(8, 4), hex.substr(12, 4), hex.substr(16, 4),
                       hex.substr(20));
}

bool is_guid(std::string_view text) {
    if (text.size() != 36)
        return false;
    for (size_t i = 0; i < text.size(); ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? text[i] != '-' : !std::isxdigit(static_cast<unsigned char>(text[i])))
            return false;
    }
    return true;
}

std::string temporary_path_for(const std::string& final_path) {
    std::filesystem::path p(final_path);
    return (p.parent_path() /
            fmt::format(".{}.corral-tmp-{}", p.filename().string(), random_hex(16)))
        .string();
}

Result<UniqueFd> create_exclusive(const std::string& path, mode_t mode) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode));
    if (!fd.valid())
        return fail_errno(fmt::format("creating '{}'", path));
    if (::fchmod(fd.get(), mode) != 0) {
        auto error = Error::from_errno(fmt::format("chmod of '{}'", path));
        ::unlink(path.c_str());
        return fail(error);
    }
    return fd;
}

Result<void> write_file_atomically(const std::string& path, std::string_view data, mode_t mode) {
    const std::string temporary = temporary_path_for(path);
    UniqueFd fd = TRY(create_exclusive(temporary, mode));
    auto undo = [&](Error error) {
        ::unlink(temporary.c_str());
        return fail(std::move(error));
    };
    size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return undo(Error::from_errno(fmt::format("writing '{}'", temporary)));
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0)
        return undo(Error::from_errno(fmt::format("writing '{}'", temporary)));
    if (::rename(temporary.c_str(), path.c_str()) != 0)
        return undo(Error::from_errno(fmt::format("renaming '{}' to '{}'", temporary, path)));
    return {};
}

}  // namespace corral
