#pragma once

// The secret a repository is encrypted with: read from a key file, split into independent keys.

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "base/result.h"

namespace corral::storage::backup {

/// Keys derived from a repository key file (HMAC-SHA-256 of the file's bytes with a fixed label
/// each), so one key never serves two purposes.
struct BackupKey {
    std::array<uint8_t, 32> encryption{};  ///< AES-256-GCM key for chunks and indexes
    std::array<uint8_t, 32> naming{};      ///< HMAC-SHA-256 key that names chunks
    std::array<uint8_t, 32> check{};       ///< stored (as hex) in the repository to refuse a wrong key
};

/// Smallest key file accepted: 256 bits of secret.
inline constexpr size_t k_min_key_file_bytes = 32;

/// Reads a key file (a regular file of at least 32 bytes, at most 4 KiB) and derives the keys.
/// Fails naming the file and what is wrong with it.
Result<BackupKey> load_key_file(const std::string& path);

/// Writes a new key file of 32 random bytes (mode 0600); fails if anything exists at `path`.
Result<void> create_key_file(const std::string& path);

/// Lowercase hex of `bytes`.
std::string to_hex(std::span<const uint8_t> bytes);

/// The name of a chunk: hex SHA-256 of `data`, or hex HMAC-SHA-256 keyed with `key->naming`
/// when the repository is encrypted (so names reveal nothing of the content).
std::string chunk_name(const BackupKey* key, std::span<const uint8_t> data);

}  // namespace corral::storage::backup
