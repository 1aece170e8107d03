#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "daemon/http/api_error.h"
#include "daemon/inventory/inventory.h"

namespace corral::daemon {

/// A token as POST /tokens answers it: the only time its secret is shown.
struct CreatedToken {
    inventory::TokenRecord record;
    std::string secret;
};

/// A new secret: "corral_" and 32 random bytes (OpenSSL's RAND_bytes) in URL-safe base64
/// without padding, so it fits in a header, a URL or an environment variable unquoted.
std::string generate_token_secret();

/// Lowercase hex SHA-256 of `secret`: what the inventory stores instead of the secret.
std::string hash_token(std::string_view secret);

/// Compares two strings in time that depends only on their lengths (CRYPTO_memcmp), so a
/// caller guessing a token learns nothing from how long a comparison took.
bool equal_in_constant_time(std::string_view a, std::string_view b);

/// Validates the name (the rules of VM names: 400 naming `name`), makes a secret and stores its
/// hash (409 if the name is taken).
ApiResult<CreatedToken> create_token(inventory::Inventory& inventory, const std::string& name);

/// The token whose secret is `secret`, or nullopt. Every stored hash is compared, in constant
/// time, whether or not an earlier one matched.
Result<std::optional<inventory::TokenRecord>> find_token(inventory::Inventory& inventory, std::string_view secret);

}  // namespace corral::daemon
