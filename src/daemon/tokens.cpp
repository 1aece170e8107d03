#include "daemon/tokens.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <array>

#include <fmt/format.h>

#include "daemon/names.h"

namespace corral::daemon {

namespace {

constexpr size_t k_secret_bytes = 32;
constexpr std::string_view k_secret_prefix = "corral_";

std::string base64url(const unsigned char* data, size_t size) {
    static constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    uint32_t bits = 0;
    int count = 0;
    for (size_t i = 0; i < size; ++i) {
        bits = (bits << 8) | data[i];
        count += 8;
        while (count >= 6) {
            count -= 6;
            out += k_alphabet[(bits >> count) & 0x3f];
        }
    }
    if (count > 0) out += k_alphabet[(bits << (6 - count)) & 0x3f];
    return out;
}

}  // namespace

std::string generate_token_secret() {
    std::array<unsigned char, k_secret_bytes> random{};
    // RAND_bytes fails only if the OS entropy source does: nothing sensible to hand out then.
    if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) std::abort();
    return std::string(k_secret_prefix) + base64url(random.data(), random.size());
}

std::string hash_token(std::string_view secret) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int length = 0;
    if (EVP_Digest(secret.data(), secret.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1) std::abort();
    std::string hex;
    hex.reserve(length * 2);
    for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
    return hex;
}

bool equal_in_constant_time(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

ApiResult<CreatedToken> create_token(inventory::Inventory& inventory, const std::string& name) {
    TRY_VOID(validate_name(name, "token name", "name"));
    CreatedToken created;
    created.secret = generate_token_secret();
    inventory::TokenRecord record;
    record.name = name;
    record.sha256 = hash_token(created.secret);
    created.record = TRY(api(inventory.create_token(record), "name"));
    return created;
}

Result<std::optional<inventory::TokenRecord>> find_token(inventory::Inventory& inventory, std::string_view secret) {
    const std::string presented = hash_token(secret);
    auto tokens = TRY(inventory.list_tokens());
    std::optional<inventory::TokenRecord> found;
    // No early exit: the time taken does not say which (or whether a) token matched.
    for (auto& token : tokens) {
        if (equal_in_constant_time(token.sha256, presented) && !found) found = std::move(token);
    }
    return found;
}

}  // namespace corral::daemon
