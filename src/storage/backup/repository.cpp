#include "storage/backup/repository.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

#include "base/private_file.h"
#include "storage/backup/backup_key.h"
#include "storage/backup/blob_codec.h"
#include "storage/backup/catalogue.h"
#include "storage/file.h"

namespace corral::storage::backup {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* k_format = "corral-backup-repository";
constexpr int k_version = 1;
constexpr uint32_t k_min_chunk = 64u << 10;
constexpr uint32_t k_max_chunk = 64u << 20;
constexpr const char* k_index_suffix = ".index";

bool valid_name_chars(const std::string& value, size_t max) {
    if (value.empty() || value.size() > max || value[0] == '.')
        return false;
    return std::all_of(value.begin(), value.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '.' || c == '_' || c == '-';
    });
}

Result<std::string> read_small_file(const std::string& path, size_t max) {
    File file = TRY(File::open(path, Access::ReadOnly));
    const uint64_t size = TRY(file.size());
    if (size > max)
        return fail(fmt::format("'{}' is {} bytes, more than the {} allowed", path, size, max), EINVAL);
    std::string text(size, '\0');
    TRY_VOID(file.read_exact(0, std::span(reinterpret_cast<uint8_t*>(text.data()), text.size())));
    return text;
}

Result<std::vector<uint8_t>> read_whole_file(const std::string& path, size_t max) {
    File file = TRY(File::open(path, Access::ReadOnly));
    const uint64_t size = TRY(file.size());
    if (size > max)
        return fail(fmt::format("'{}' is {} bytes, more than the {} allowed", path, size, max), EINVAL);
    std::vector<uint8_t> data(size);
    TRY_VOID(file.read_exact(0, data));
    return data;
}

Result<void> make_dir(const std::string& path) {
    if (::mkdir(path.c_str(), 0700) != 0)
        return fail_errno(fmt::format("creating folder '{}'", path));
    return {};
}

/// What create() may build in: nothing there, or an empty folder. Returns true when it will
/// create the folder itself.
Result<bool> check_create_target(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT)
            return true;
        return fail_errno(fmt::format("repository path '{}'", path));
    }
    if (!S_ISDIR(st.st_mode))
        return fail(fmt::format("repository path '{}' exists and is not a folder", path), EEXIST);
    std::error_code ec;
    if (!fs::is_empty(path, ec) || ec)
        return fail(fmt::format("repository path '{}' is not empty (a new repository needs an empty "
                                "or missing folder)",
                                path),
                    EEXIST);
    return false;
}

Result<void> build_repository(const std::string& path, const RepositoryCreateOptions& options,
                              const BackupKey* key) {
    TRY_VOID(make_dir(path + "/chunks"));
    for (int i = 0; i < 256; ++i)
        TRY_VOID(make_dir(fmt::format("{}/chunks/{:02x}", path, i)));
    TRY_VOID(make_dir(path + "/indexes"));
    {
        UniqueFd lock = TRY(create_exclusive(path + "/lock", 0600));
    }
    TRY_VOID(Catalogue::open(path + "/catalogue.sqlite"));
    json config = {{"format", k_format},
                   {"version", k_version},
                   {"chunk_size", options.chunk_size},
                   {"compression", "zstd"},
                   {"zstd_level", options.zstd_level},
                   {"encryption", key ? "aes-256-gcm" : "none"},
                   {"key_check", key ? to_hex(key->check) : ""}};
    // Written last: a folder without config.json is not a repository, so a create that died
    // half-way leaves nothing that opens.
    TRY_VOID(write_file_atomically(path + "/config.json", config.dump(2) + "\n", 0600));
    TRY_VOID(sync_directory(path + "/chunks"));
    return sync_directory(path);
}

}  // namespace

Result<void> validate_backup_id(const std::string& id) {
    if (!valid_name_chars(id, 128))
        return fail(fmt::format("backup id '{}' is invalid (allowed: 1 to 128 of A-Z a-z 0-9 . _ -, "
                                "not starting with '.')",
                                id),
                    EINVAL);
    return {};
}

Result<void> validate_name(const char* field, const std::string& value) {
    if (!valid_name_chars(value, 64))
        return fail(fmt::format("{} '{}' is invalid (allowed: 1 to 64 of A-Z a-z 0-9 . _ -, not "
                                "starting with '.')",
                                field, value),
                    EINVAL);
    return {};
}

Result<void> sync_directory(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid() || ::fsync(fd.get()) != 0)
        return fail_errno(fmt::format("syncing folder '{}'", path));
    return {};
}

Repository::Repository() = default;
Repository::Repository(Repository&& other) noexcept {
    *this = std::move(other);
}
Repository& Repository::operator=(Repository&& other) noexcept {
    if (this != &other) {
        discard_pending();
        m_path = std::move(other.m_path);
        m_chunk_size = other.m_chunk_size;
        m_zstd_level = other.m_zstd_level;
        m_key = std::move(other.m_key);
        m_codec = std::move(other.m_codec);
        m_catalogue = std::move(other.m_catalogue);
        m_dirty_dirs = std::move(other.m_dirty_dirs);
        m_pending = std::exchange(other.m_pending, {});
        m_pending_names = std::exchange(other.m_pending_names, {});
        m_pending_bytes = std::exchange(other.m_pending_bytes, 0);
    }
    return *this;
}
Repository::~Repository() {
    discard_pending();
}

Result<void> Repository::create(const std::string& path, const RepositoryCreateOptions& options) {
    if (path.empty())
        return fail("repository path is empty", EINVAL);
    if (options.chunk_size < k_min_chunk || options.chunk_size > k_max_chunk ||
        (options.chunk_size & (options.chunk_size - 1)))
        return fail(fmt::format("chunk_size {} is invalid (allowed: a power of two from {} to {})",
                                options.chunk_size, k_min_chunk, k_max_chunk),
                    EINVAL);
    if (options.zstd_level < 1 || options.zstd_level > 19)
        return fail(fmt::format("zstd_level {} is invalid (allowed: 1 to 19)", options.zstd_level),
                    EINVAL);
    std::optional<BackupKey> key;
    if (options.key_file)
        key = TRY(load_key_file(*options.key_file));
    const bool make_root = TRY(check_create_target(path));
    if (make_root)
        TRY_VOID(make_dir(path));
    auto built = build_repository(path, options, key ? &*key : nullptr);
    if (!built) {
        // Nothing half-created: the folder was missing or empty before.
        std::error_code ec;
        if (make_root) {
            fs::remove_all(path, ec);
        } else {
            for (const auto& entry : fs::directory_iterator(path, ec))
                fs::remove_all(entry.path(), ec);
        }
        return built;
    }
    return {};
}

Result<Repository> Repository::open(const std::string& path,
                                    const std::optional<std::string>& key_file) {
    auto text = read_small_file(path + "/config.json", 64 << 10);
    if (!text)
        return fail(Error(text.error().errno_value() == ENOENT ? ErrorKind::NotFound : ErrorKind::Invalid,
                          fmt::format("'{}' is not a backup repository ({})", path,
                                      text.error().describe())));
    json config = json::parse(*text, nullptr, false);
    Repository repo;
    repo.m_path = path;
    std::string encryption, key_check;
    try {
        if (config.value("format", "") != k_format || config.value("version", 0) != k_version)
            return fail(fmt::format("'{}/config.json' has an unknown format or version", path), EINVAL);
        repo.m_chunk_size = config.at("chunk_size").get<uint32_t>();
        repo.m_zstd_level = config.at("zstd_level").get<int>();
        encryption = config.at("encryption").get<std::string>();
        key_check = config.at("key_check").get<std::string>();
    } catch (const json::exception& e) {
        return fail(fmt::format("'{}/config.json' is malformed: {}", path, e.what()), EINVAL);
    }
    if (repo.m_chunk_size < k_min_chunk || repo.m_chunk_size > k_max_chunk)
        return fail(fmt::format("'{}/config.json': chunk_size {} is out of range", path,
                                repo.m_chunk_size),
                    EINVAL);
    if (encryption == "aes-256-gcm") {
        if (!key_file)
            return fail(fmt::format("repository '{}' is encrypted: give its key file", path), EINVAL);
        repo.m_key = std::make_unique<BackupKey>(TRY(load_key_file(*key_file)));
        if (to_hex(repo.m_key->check) != key_check)
            return fail(ErrorKind::Invalid,
                        fmt::format("key file '{}' is not the key of repository '{}'", *key_file, path));
    } else if (encryption == "none") {
        if (key_file)
            return fail(fmt::format("repository '{}' is not encrypted: give no key file", path), EINVAL);
    } else {
        return fail(fmt::format("'{}/config.json': encryption '{}' is not known", path, encryption),
                    EINVAL);
    }
    repo.m_codec = std::make_unique<BlobCodec>(repo.m_key.get(), repo.m_zstd_level);
    repo.m_catalogue =
        std::make_unique<Catalogue>(TRY(Catalogue::open(path + "/catalogue.sqlite")));
    return repo;
}

Result<RepositoryLock> Repository::lock(LockMode mode) const {
    UniqueFd fd(::open((m_path + "/lock").c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid())
        return fail_errno(fmt::format("opening '{}/lock'", m_path));
    if (::flock(fd.get(), (mode == LockMode::Shared ? LOCK_SH : LOCK_EX) | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK)
            return fail(ErrorKind::Busy,
                        mode == LockMode::Shared
                            ? fmt::format("repository '{}' is busy: garbage collection is running", m_path)
                            : fmt::format("repository '{}' is busy: a backup, verify or restore is "
                                          "running",
                                          m_path));
        return fail_errno(fmt::format("locking '{}/lock'", m_path));
    }
    return RepositoryLock(std::move(fd));
}

std::string Repository::chunk_name(std::span<const uint8_t> data) const {
    return backup::chunk_name(m_key.get(), data);
}

std::string Repository::chunk_path(const std::string& name) const {
    return fmt::format("{}/chunks/{}/{}", m_path, name.substr(0, 2), name);
}

std::string Repository::index_path(const std::string& id) const {
    return fmt::format("{}/indexes/{}{}", m_path, id, k_index_suffix);
}

bool Repository::has_chunk(const std::string& name) const {
    struct stat st {};
    return ::stat(chunk_path(name).c_str(), &st) == 0;
}

Result<uint64_t> Repository::put_chunk(const std::string& name, std::span<const uint8_t> data) {
    if (has_chunk(name) ||
        std::find(m_pending_names.begin(), m_pending_names.end(), name) != m_pending_names.end())
        return uint64_t{0};
    std::vector<uint8_t> blob = TRY(m_codec->encode(data, "chunk:" + name));
    const std::string path = chunk_path(name);
    const std::string temporary = temporary_path_for(path);
    {
        UniqueFd fd = TRY(create_exclusive(temporary, 0600));
        size_t done = 0;
        while (done < blob.size()) {
            const ssize_t n = ::write(fd.get(), blob.data() + done, blob.size() - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                // Disk full, typically: the partial file must never be committed.
                Error error = Error::from_errno(fmt::format("writing '{}'", temporary));
                ::unlink(temporary.c_str());
                return fail(error);
            }
            done += static_cast<size_t>(n);
        }
    }
    m_pending.push_back({temporary, path});
    m_pending_names.push_back(name);
    m_pending_bytes += blob.size();
    // A batch of at most 64 chunks or 256 MiB: one syncfs each.
    constexpr size_t k_batch_chunks = 64;
    constexpr uint64_t k_batch_bytes = 256u << 20;
    if (m_pending.size() >= k_batch_chunks || m_pending_bytes >= k_batch_bytes)
        TRY_VOID(commit_pending());
    return uint64_t{blob.size()};
}

Result<void> Repository::commit_pending() {
    if (m_pending.empty())
        return {};
    UniqueFd root(::open(m_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root.valid() || ::syncfs(root.get()) != 0)
        return fail_errno(fmt::format("syncing the file system of '{}'", m_path));
    for (const auto& chunk : m_pending) {
        if (::rename(chunk.temporary.c_str(), chunk.path.c_str()) != 0)
            return fail_errno(fmt::format("renaming '{}' to '{}'", chunk.temporary, chunk.path));
        std::string dir = chunk.path.substr(0, chunk.path.rfind('/'));
        if (std::find(m_dirty_dirs.begin(), m_dirty_dirs.end(), dir) == m_dirty_dirs.end())
            m_dirty_dirs.push_back(std::move(dir));
    }
    m_pending.clear();
    m_pending_names.clear();
    m_pending_bytes = 0;
    return {};
}

void Repository::discard_pending() {
    for (const auto& chunk : m_pending)
        ::unlink(chunk.temporary.c_str());
    m_pending.clear();
    m_pending_names.clear();
    m_pending_bytes = 0;
}

Result<void> Repository::sync_chunks() {
    auto committed = commit_pending();
    if (!committed) {
        discard_pending();
        return committed;
    }
    for (const auto& dir : m_dirty_dirs)
        TRY_VOID(sync_directory(dir));
    m_dirty_dirs.clear();
    return {};
}

Result<std::vector<uint8_t>> Repository::read_chunk(const std::string& name) {
    // The largest blob: a chunk stored uncompressed, plus header, nonce and tag.
    auto blob = TRY(read_whole_file(chunk_path(name), size_t{m_chunk_size} + 64));
    auto plain = TRY(m_codec->decode(blob, "chunk:" + name, m_chunk_size));
    if (chunk_name(plain) != name)
        return fail("content does not match the chunk's name (damaged)", EINVAL);
    return plain;
}

Result<void> Repository::remove_chunk(const std::string& name) {
    if (::unlink(chunk_path(name).c_str()) != 0 && errno != ENOENT)
        return fail_errno(fmt::format("removing chunk '{}'", name));
    return {};
}

Result<std::vector<StoredChunk>> Repository::stored_chunks(std::vector<std::string>* temporaries) const {
    std::vector<StoredChunk> out;
    std::error_code ec;
    for (int i = 0; i < 256; ++i) {
        const std::string dir = fmt::format("{}/chunks/{:02x}", m_path, i);
        fs::directory_iterator it(dir, ec);
        if (ec)
            return fail(fmt::format("listing '{}': {}", dir, ec.message()));
        for (const auto& entry : it) {
            const std::string name = entry.path().filename().string();
            if (is_chunk_name(name)) {
                out.push_back({name, entry.file_size(ec)});
            } else if (temporaries && name.starts_with(".") &&
                       name.find(".corral-tmp-") != std::string::npos) {
                temporaries->push_back(entry.path().string());
            }
        }
    }
    return out;
}

Result<void> Repository::write_index(const BackupIndex& index) {
    TRY_VOID(validate_backup_id(index.id));
    const std::string text = encode_index_json(index);
    std::vector<uint8_t> blob = TRY(m_codec->encode(
        std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()), "index:" + index.id));
    TRY_VOID(write_file_atomically(
        index_path(index.id), std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size()),
        0600));
    return sync_directory(m_path + "/indexes");
}

Result<BackupIndex> Repository::read_index(const std::string& id) {
    TRY_VOID(validate_backup_id(id));
    constexpr size_t k_max_index = 256u << 20;
    auto blob = TRY_CONTEXT(read_whole_file(index_path(id), k_max_index),
                            fmt::format("index of backup '{}'", id));
    auto plain = TRY_CONTEXT(m_codec->decode(blob, "index:" + id, k_max_index),
                             fmt::format("index of backup '{}'", id));
    BackupIndex index = TRY_CONTEXT(
        decode_index_json(std::string_view(reinterpret_cast<const char*>(plain.data()), plain.size())),
        fmt::format("index of backup '{}'", id));
    if (index.id != id)
        return fail(fmt::format("index of backup '{}' names backup '{}'", id, index.id), EINVAL);
    return index;
}

Result<std::vector<std::string>> Repository::index_ids(std::vector<std::string>* temporaries) const {
    std::vector<std::string> out;
    std::error_code ec;
    const std::string dir = m_path + "/indexes";
    fs::directory_iterator it(dir, ec);
    if (ec)
        return fail(fmt::format("listing '{}': {}", dir, ec.message()));
    for (const auto& entry : it) {
        const std::string name = entry.path().filename().string();
        if (name.ends_with(k_index_suffix) && name[0] != '.')
            out.push_back(name.substr(0, name.size() - std::string_view(k_index_suffix).size()));
        else if (temporaries && name.starts_with(".") && name.find(".corral-tmp-") != std::string::npos)
            temporaries->push_back(entry.path().string());
    }
    std::sort(out.begin(), out.end());
    return out;
}

Result<void> Repository::remove_index(const std::string& id) {
    TRY_VOID(validate_backup_id(id));
    if (::unlink(index_path(id).c_str()) != 0 && errno != ENOENT)
        return fail_errno(fmt::format("removing the index of backup '{}'", id));
    return {};
}

}  // namespace corral::storage::backup
