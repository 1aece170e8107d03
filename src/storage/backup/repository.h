#pragma once

// A backup repository on a host folder:
//   config.json          format, chunk size, compression level, encryption and key check
//   catalogue.sqlite     backups and the chunks each references (catalogue.h)
//   chunks/XX/NAME       one blob (blob_codec.h) per chunk, XX = the name's first two digits
//   indexes/ID.index     one blob per backup: its BackupIndex as JSON
//   lock                 flock: backups, verify and restore hold it shared, gc exclusive
// Every file is written to a temporary name, fsynced and renamed; a backup's index is written
// after its chunks are durable, and the catalogue marks it complete last.

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "storage/backup/backup_index.h"

namespace corral::storage::backup {

class BlobCodec;
class Catalogue;
struct BackupKey;

inline constexpr uint32_t k_default_chunk_size = 4u << 20;

/// How a repository is made. Values are checked by Repository::create (errors name the field).
struct RepositoryCreateOptions {
    std::optional<std::string> key_file{};  ///< encrypt with this key file (backup_key.h)
    uint32_t chunk_size = k_default_chunk_size;  ///< power of two, 64 KiB to 64 MiB
    int zstd_level = 1;                           ///< 1 to 19
};

enum class LockMode { Shared, Exclusive };

/// A held repository lock (flock on FILE lock); released when destroyed.
class RepositoryLock {
public:
    explicit RepositoryLock(UniqueFd fd) : m_fd(std::move(fd)) {}

private:
    UniqueFd m_fd;
};

/// A chunk file found in the store.
struct StoredChunk {
    std::string name;
    uint64_t bytes = 0;
};

/// An open repository. Move-only; not thread-safe (one per thread).
class Repository {
public:
    /// Makes a repository at `path`, which must not exist or be an empty folder. Nothing is left
    /// behind when it fails.
    static Result<void> create(const std::string& path, const RepositoryCreateOptions& options);
    /// Opens a repository. An encrypted one needs its key file, and a wrong key is refused
    /// before anything is written; an unencrypted one refuses a key.
    static Result<Repository> open(const std::string& path, const std::optional<std::string>& key_file);

    Repository(Repository&&) noexcept;
    Repository& operator=(Repository&&) noexcept;
    ~Repository();

    const std::string& path() const { return m_path; }
    uint32_t chunk_size() const { return m_chunk_size; }
    int zstd_level() const { return m_zstd_level; }
    bool encrypted() const { return m_key != nullptr; }
    Catalogue& catalogue() { return *m_catalogue; }

    /// Takes the repository lock without waiting; Busy when the other kind is held.
    Result<RepositoryLock> lock(LockMode mode) const;

    /// The name `data` is stored under (SHA-256, or HMAC-SHA-256 with a key).
    std::string chunk_name(std::span<const uint8_t> data) const;
    std::string chunk_path(const std::string& name) const;
    std::string index_path(const std::string& id) const;
    bool has_chunk(const std::string& name) const;
    /// Stores a chunk unless it is there; returns the bytes written (0 if it was there). Chunks
    /// are written to temporary names in batches: one syncfs(2) makes a batch durable, then each
    /// is renamed to its name (a chunk file under its name is always complete, as with a
    /// per-file fsync, at a fraction of the cost). sync_chunks() ends the last batch.
    Result<uint64_t> put_chunk(const std::string& name, std::span<const uint8_t> data);
    /// Commits the pending batch and fsyncs the chunk folders written to, so every chunk stored so
    /// far is durable under its name. A backup calls it before it writes its index.
    Result<void> sync_chunks();
    /// Reads and decodes a chunk and checks its content against its name.
    Result<std::vector<uint8_t>> read_chunk(const std::string& name);
    Result<void> remove_chunk(const std::string& name);
    /// Every chunk file in the store, and the leftover temporary files of killed writes.
    Result<std::vector<StoredChunk>> stored_chunks(std::vector<std::string>* temporaries) const;

    Result<void> write_index(const BackupIndex& index);
    Result<BackupIndex> read_index(const std::string& id);
    /// Index ids present on disk (complete or not), and the leftover temporary files of killed
    /// index writes.
    Result<std::vector<std::string>> index_ids(std::vector<std::string>* temporaries = nullptr) const;
    Result<void> remove_index(const std::string& id);

private:
    Repository();

    std::string m_path;
    uint32_t m_chunk_size = k_default_chunk_size;
    int m_zstd_level = 1;
    std::unique_ptr<BackupKey> m_key;
    std::unique_ptr<BlobCodec> m_codec;
    std::unique_ptr<Catalogue> m_catalogue;
    struct PendingChunk {
        std::string temporary;
        std::string path;
    };
    /// syncfs, then renames every pending chunk to its name.
    Result<void> commit_pending();
    /// Removes the temporary files of a batch that will not be committed.
    void discard_pending();

    std::vector<std::string> m_dirty_dirs;
    std::vector<PendingChunk> m_pending;
    std::vector<std::string> m_pending_names;
    uint64_t m_pending_bytes = 0;
};

/// Checks a backup id given by a user: 1 to 128 of [A-Za-z0-9._-], not starting with '.'.
Result<void> validate_backup_id(const std::string& id);
/// Checks a VM or disk name put into a backup (field names the field in the message).
Result<void> validate_name(const char* field, const std::string& value);

/// fsyncs a folder, so the names created in it are durable.
Result<void> sync_directory(const std::string& path);

}  // namespace corral::storage::backup
