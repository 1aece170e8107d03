#include "storage/backup/backup_key.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include <string_view>
#include <vector>

#include "base/private_file.h"
#include "base/unique_fd.h"

namespace corral::storage::backup {

namespace {

constexpr size_t k_max_key_file_bytes = 4096;

std::array<uint8_t, 32> derive(std::span<const uint8_t> secret, std::string_view label) {
    std::array<uint8_t, 32> out{};
    unsigned int length = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(label.data()), label.size(), out.data(), &length);
    return out;
}

}  // namespace

std::string to_hex(std::span<const uint8_t> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(bytes.size() * 2, '0');
    for (size_t i = 0; i < bytes.size(); ++i) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    return out;
}

Result<BackupKey> load_key_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid())
        return fail_errno(fmt::format("key file '{}'", path));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0)
        return fail_errno(fmt::format("key file '{}'", path));
    if (!S_ISREG(st.st_mode))
        return fail(fmt::format("key file '{}' is not a regular file", path), EINVAL);
    if (st.st_size < static_cast<off_t>(k_min_key_file_bytes) ||
        st.st_size > static_cast<off_t>(k_max_key_file_bytes))
        return fail(fmt::format("key file '{}' holds {} bytes (allowed: {} to {}; "
                                "e.g. head -c 32 /dev/urandom > FILE)",
                                path, st.st_size, k_min_key_file_bytes, k_max_key_file_bytes),
                    EINVAL);
    std::vector<uint8_t> secret(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < secret.size()) {
        ssize_t n = ::read(fd.get(), secret.data() + done, secret.size() - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail_errno(fmt::format("reading key file '{}'", path));
        if (n == 0)
            return fail(fmt::format("key file '{}' shrank while it was read", path), EINVAL);
        done += static_cast<size_t>(n);
    }
    BackupKey key;
    key.encryption = derive(secret, "corral-backup v1 encryption");
    key.naming = derive(secret, "corral-backup v1 chunk names");
    key.check = derive(secret, "corral-backup v1 key check");
    OPENSSL_cleanse(secret.data(), secret.size());
    return key;
}

Result<void> create_key_file(const std::string& path) {
    std::array<uint8_t, 32> secret{};
    if (RAND_bytes(secret.data(), static_cast<int>(secret.size())) != 1)
        return fail("no random bytes from OpenSSL for a key file");
    UniqueFd fd = TRY(create_exclusive(path, 0600));
    if (::write(fd.get(), secret.data(), secret.size()) != static_cast<ssize_t>(secret.size()) ||
        ::fsync(fd.get()) != 0) {
        Error error = Error::from_errno(fmt::format("writing key file '{}'", path));
        ::unlink(path.c_str());
        return fail(error);
    }
    OPENSSL_cleanse(secret.data(), secret.size());
    return {};
}

std::string chunk_name(const BackupKey* key, std::span<const uint8_t> data) {
    std::array<uint8_t, 32> digest{};
    if (key) {
        unsigned int length = 0;
        HMAC(EVP_sha256(), key->naming.data(), static_cast<int>(key->naming.size()), data.data(),
             data.size(), digest.data(), &length);
    } else {
        SHA256(data.data(), data.size(), digest.data());
    }
    return to_hex(digest);
}

}  // namespace corral::storage::backup
