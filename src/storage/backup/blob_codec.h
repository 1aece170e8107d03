#pragma once

// The on-disk form of every chunk and index in a repository: a small header, then the data
// zstd-compressed (when that makes it smaller) and, with a key, sealed with AES-256-GCM.

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "storage/backup/backup_key.h"

namespace corral::storage::backup {

/// Encodes and decodes blobs. Holds zstd contexts, so reuse one per thread.
///
/// Layout: "CRBK" | version 1 | flags (1 = zstd, 2 = AES-256-GCM) | 2 reserved zero bytes |
/// plain length (u32 LE) | [12-byte nonce] payload [16-byte tag]. With a key the header and the
/// blob's name (`binding`) are the GCM additional data: a blob cannot be renamed, swapped for
/// another or have its flags changed without decoding failing.
class BlobCodec {
public:
    /// `key` may be null (no encryption); it must outlive the codec.
    BlobCodec(const BackupKey* key, int zstd_level);
    ~BlobCodec();
    BlobCodec(BlobCodec&&) noexcept;
    BlobCodec& operator=(BlobCodec&&) noexcept;

    Result<std::vector<uint8_t>> encode(std::span<const uint8_t> plain, std::string_view binding);
    /// Decodes a blob of at most `max_plain` bytes; fails naming what is wrong (bad magic,
    /// authentication failed: wrong key or damaged data, bad compressed data, length mismatch).
    Result<std::vector<uint8_t>> decode(std::span<const uint8_t> blob, std::string_view binding,
                                        size_t max_plain);

private:
    struct Contexts;
    const BackupKey* m_key;
    int m_level;
    std::unique_ptr<Contexts> m_contexts;
};

}  // namespace corral::storage::backup
