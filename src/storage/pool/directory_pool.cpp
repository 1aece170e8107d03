#include "storage/pool/directory_pool.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <optional>

#include "base/private_file.h"
#include "base/unique_fd.h"
#include "storage/endian.h"
#include "storage/qcow2/format.h"

namespace corral::storage::pool {

namespace fs = std::filesystem;

namespace {

constexpr mode_t k_pool_folder_mode = 0750;

const char* extension(ImageFormat format) {
    return format == ImageFormat::Raw ? ".raw" : ".qcow2";
}

Error from_error_code(const std::error_code& ec, const std::string& what) {
    return Error(fmt::format("{}: {}", what, ec.message()), ec.value());
}

/// Renames without replacing an existing file (EEXIST if `to` exists).
Result<void> rename_noreplace(const std::string& from, const std::string& to) {
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0)
        return {};
    if (errno != EINVAL && errno != ENOSYS)
        return fail_errno(fmt::format("renaming '{}' to '{}'", from, to));
    // File systems without RENAME_NOREPLACE: link() fails with EEXIST just the same.
    if (::link(from.c_str(), to.c_str()) != 0)
        return fail_errno(fmt::format("linking '{}' to '{}'", from, to));
    ::unlink(from.c_str());
    return {};
}

/// Makes a rename or unlink in `dir` durable.
void sync_directory(const std::string& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    ::fsync(fd);
    ::close(fd);
}

std::string parent_of(const std::string& path) {
    fs::path parent = fs::path(path).parent_path();
    return parent.empty() ? "." : parent.string();
}

/// A hidden name next to `final_path` (volume names never start with '.', so scans skip it),
/// with 128 random bits: a local user cannot plant a symlink there in advance.
std::string temp_name_for(const std::string& final_path) { return temporary_path_for(final_path); }

/// Reads and parses a qcow2 header without opening the backing chain.
Result<qcow2::Header> read_qcow2_header(const std::string& path) {
    File file = TRY(File::open(path, Access::ReadOnly));
    uint64_t size = TRY(file.size());
    uint8_t fixed[qcow2::k_v2_header_length] = {};
    if (size < sizeof fixed)
        return fail(fmt::format("'{}' is too short to be a qcow2 image", path), EINVAL);
    TRY_VOID(file.read_exact(0, fixed));
    uint32_t cluster_bits = load_be32(fixed + 20);
    if (cluster_bits < qcow2::k_min_cluster_bits || cluster_bits > qcow2::k_max_cluster_bits)
        return fail(fmt::format("'{}' has an invalid cluster_bits {}", path, cluster_bits), EINVAL);
    // The header, its extensions and the backing file name all live in the first cluster.
    std::vector<uint8_t> first(std::min<uint64_t>(size, 1ull << cluster_bits));
    TRY_VOID(file.read_exact(0, first));
    return TRY_CONTEXT(qcow2::parse_header(first, size), fmt::format("'{}'", path));
}

ImageCreateOptions create_options(ImageFormat format, std::optional<uint64_t> size) {
    ImageCreateOptions o;
    o.format = format;
    o.size = size;
    return o;
}

ImageOpenOptions open_options(Access access, std::optional<ImageFormat> format) {
    ImageOpenOptions o;
    o.access = access;
    o.format = format;
    return o;
}

Result<void> check_size(const char* field, uint64_t size) {
    if (size == 0 || size % 512 != 0 || size > qcow2::k_max_virtual_size)
        return fail(fmt::format("{} must be a positive multiple of 512 up to {} (got {})", field,
                                qcow2::k_max_virtual_size, size),
                    EINVAL);
    return {};
}

}  // namespace

/// A file being written under a temporary name; removed on destruction unless committed.
class DirectoryPool::TempFile {
public:
    explicit TempFile(std::string path) : m_path(std::move(path)) {}
    TempFile(const TempFile&) = delete;
    TempFile& operator=(const TempFile&) = delete;
    ~TempFile() {
        if (!m_committed)
            ::unlink(m_path.c_str());
    }
    const std::string& path() const { return m_path; }
    /// Renames it to `final_path`, failing with EEXIST if that exists.
    Result<void> commit(const std::string& final_path) {
        TRY_VOID(rename_noreplace(m_path, final_path));
        m_committed = true;
        sync_directory(parent_of(final_path));
        return {};
    }

private:
    std::string m_path;
    bool m_committed = false;
};

Result<std::string> DirectoryPool::identity() const {
    const std::string file = m_path + "/.corral-pool-id";
    auto read_id = [&]() -> std::optional<std::string> {
        UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        if (!fd.valid())
            return std::nullopt;
        char buffer[64] = {};
        ssize_t got = ::read(fd.get(), buffer, sizeof buffer - 1);
        std::string id(buffer, got > 0 ? static_cast<size_t>(got) : 0);
        while (!id.empty() && (id.back() == '\n' || id.back() == ' '))
            id.pop_back();
        if (id.size() != 32 || id.find_first_not_of("0123456789abcdef") != std::string::npos)
            return std::nullopt;
        return id;
    };
    if (auto id = read_id())
        return *id;
    // First ask: a new id, written under a temporary name and linked into place, so that two
    // daemons asking at once agree on one (link fails with EEXIST for the second).
    UniqueFd random(::open("/dev/urandom", O_RDONLY | O_CLOEXEC));
    unsigned char bytes[16];
    if (!random.valid() || ::read(random.get(), bytes, sizeof bytes) != static_cast<ssize_t>(sizeof bytes))
        return fail_errno("cannot read /dev/urandom for a pool identity");
    std::string id;
    for (unsigned char byte : bytes)
        id += fmt::format("{:02x}", byte);
    const std::string temp = fmt::format("{}/.corral-pool-id.{}", m_path, ::getpid());
    {
        UniqueFd out(::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
        if (!out.valid())
            return fail_errno(fmt::format("cannot write the identity of pool {} in {}", m_name, m_path));
        std::string line = id + "\n";
        if (::write(out.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size()) ||
            ::fsync(out.get()) != 0) {
            ::unlink(temp.c_str());
            return fail_errno(fmt::format("cannot write the identity of pool {} in {}", m_name, m_path));
        }
    }
    int linked = ::link(temp.c_str(), file.c_str());
    int link_errno = errno;
    ::unlink(temp.c_str());
    if (linked != 0 && link_errno != EEXIST)
        return fail(fmt::format("cannot write the identity of pool {} in {}", m_name, m_path), link_errno);
    if (auto stored = read_id())
        return *stored;
    return fail(fmt::format("pool {}: {} holds no valid identity (32 hex digits)", m_name, file), EINVAL);
}

Result<std::unique_ptr<DirectoryPool>> DirectoryPool::open(const std::string& name,
                                                           const std::string& folder,
                                                           MissingFolder missing) {
    TRY_VOID(check_name("pool name", name));
    if (folder.empty())
        return fail("pool path is empty", EINVAL);
    std::error_code ec;
    fs::path path = fs::absolute(folder, ec).lexically_normal();
    if (ec)
        return fail(from_error_code(ec, fmt::format("pool path '{}'", folder)));
    std::string text = path.string();
    if (text.size() > 1 && text.back() == '/')
        text.pop_back();
    if (missing == MissingFolder::Create) {
        bool created = fs::create_directories(text, ec);
        if (ec)
            return fail(from_error_code(ec, fmt::format("creating pool folder '{}'", text)));
        // A folder corral makes holds guest disks: no other user lists or enters it.
        if (created && ::chmod(text.c_str(), k_pool_folder_mode) != 0)
            return fail_errno(fmt::format("chmod of pool folder '{}'", text));
    }
    struct stat st {};
    if (::stat(text.c_str(), &st) != 0)
        return fail_errno(fmt::format("pool folder '{}'", text));
    if (!S_ISDIR(st.st_mode))
        return fail(fmt::format("pool path '{}' is not a folder", text), ENOTDIR);
    return std::unique_ptr<DirectoryPool>(new DirectoryPool(name, text));
}

std::string DirectoryPool::volume_path(const std::string& name, ImageFormat format) const {
    return m_path + "/" + name + extension(format);
}

Result<DirectoryPool::Located> DirectoryPool::locate(const std::string& name) const {
    TRY_VOID(check_name("volume name", name));
    for (ImageFormat format : {ImageFormat::Qcow2, ImageFormat::Raw}) {
        std::string path = volume_path(name, format);
        struct stat st {};
        if (::stat(path.c_str(), &st) == 0) {
            if (!S_ISREG(st.st_mode))
                return fail(fmt::format("'{}' is not a regular file", path), EINVAL);
            return Located{path, format};
        }
        if (errno != ENOENT)
            return fail_errno(fmt::format("looking up '{}'", path));
    }
    return fail(fmt::format("no volume '{}' in pool '{}'", name, m_name), ENOENT);
}

Result<void> DirectoryPool::check_new_name(const std::string& name) const {
    auto found = locate(name);
    if (found)
        return fail(fmt::format("volume '{}' already exists in pool '{}'", name, m_name), EEXIST);
    if (found.error().errno_value() != ENOENT)
        return fail(found.error());
    return {};
}

Result<VolumeInfo> DirectoryPool::describe(const std::string& name, const Located& where) const {
    VolumeInfo info;
    info.name = name;
    info.format = where.format;
    info.path = where.path;
    struct stat st {};
    if (::stat(where.path.c_str(), &st) != 0)
        return fail_errno(fmt::format("volume '{}'", where.path));
    info.allocation_bytes = uint64_t(st.st_blocks) * 512;
    if (where.format == ImageFormat::Raw) {
        info.size_bytes = uint64_t(st.st_size);
        return info;
    }
    qcow2::Header header = TRY(read_qcow2_header(where.path));
    info.size_bytes = header.size;
    if (!header.backing_file.empty()) {
        VolumeBacking backing;
        backing.path = fs::path(resolve_backing_path(where.path, header.backing_file))
                           .lexically_normal()
                           .string();
        if (header.backing_format) {
            if (auto format = parse_format(*header.backing_format))
                backing.format = *format;
        }
        fs::path b(backing.path);
        if (b.parent_path() == fs::path(m_path)) {
            std::string file = b.filename().string();
            for (ImageFormat format : {ImageFormat::Qcow2, ImageFormat::Raw}) {
                std::string ext = extension(format);
                if (file.size() > ext.size() && file.ends_with(ext)) {
                    std::string stem = file.substr(0, file.size() - ext.size());
                    if (check_name("volume name", stem))
                        backing.volume = stem;
                }
            }
        }
        info.backing = std::move(backing);
    }
    return info;
}

Result<std::vector<VolumeInfo>> DirectoryPool::scan() const {
    std::map<std::string, Located> found;
    std::error_code ec;
    fs::directory_iterator it(m_path, ec), end;
    if (ec)
        return fail(from_error_code(ec, fmt::format("listing pool folder '{}'", m_path)));
    for (; it != end; it.increment(ec)) {
        if (ec)
            return fail(from_error_code(ec, fmt::format("listing pool folder '{}'", m_path)));
        std::string file = it->path().filename().string();
        for (ImageFormat format : {ImageFormat::Qcow2, ImageFormat::Raw}) {
            std::string ext = extension(format);
            if (file.size() <= ext.size() || !file.ends_with(ext))
                continue;
            std::string stem = file.substr(0, file.size() - ext.size());
            if (!check_name("volume name", stem) || !it->is_regular_file(ec))
                continue;
            // When both n.qcow2 and n.raw exist, locate() (and so every operation) uses the qcow2.
            if (format == ImageFormat::Qcow2 || !found.contains(stem))
                found[stem] = Located{it->path().string(), format};
        }
    }
    std::vector<VolumeInfo> volumes;
    for (auto& [name, where] : found) {
        auto info = describe(name, where);
        // A volume deleted while we list is simply not listed.
        if (!info && info.error().errno_value() == ENOENT)
            continue;
        volumes.push_back(TRY_CONTEXT(std::move(info), fmt::format("volume '{}'", name)));
    }
    return volumes;
}

Result<std::vector<VolumeInfo>> DirectoryPool::list_volumes() const {
    std::vector<VolumeInfo> volumes = TRY(scan());
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < volumes.size(); ++i)
        index[volumes[i].name] = i;
    for (const auto& v : volumes)
        if (v.backing && v.backing->volume && index.contains(*v.backing->volume))
            volumes[index[*v.backing->volume]].clones.push_back(v.name);
    return volumes;
}

Result<std::vector<std::string>> DirectoryPool::clones_of(const std::string& name) const {
    std::vector<std::string> clones;
    for (const auto& v : TRY(scan()))
        if (v.backing && v.backing->volume == name)
            clones.push_back(v.name);
    return clones;
}

Result<VolumeInfo> DirectoryPool::volume_info(const std::string& name) const {
    Located where = TRY(locate(name));
    VolumeInfo info = TRY(describe(name, where));
    info.clones = TRY(clones_of(name));
    return info;
}

Result<PoolUsage> DirectoryPool::usage() const {
    struct statvfs vfs {};
    if (::statvfs(m_path.c_str(), &vfs) != 0)
        return fail_errno(fmt::format("statvfs '{}'", m_path));
    PoolUsage usage;
    usage.capacity_bytes = uint64_t(vfs.f_blocks) * vfs.f_frsize;
    usage.available_bytes = uint64_t(vfs.f_bavail) * vfs.f_frsize;
    for (const auto& v : TRY(scan()))
        usage.allocation_bytes += v.allocation_bytes;
    return usage;
}

Result<void> DirectoryPool::commit_locked(TempFile& temp, const std::string& name,
                                          ImageFormat format) {
    // Checked again here: the name may have been taken (in either format) while we copied.
    TRY_VOID(check_new_name(name));
    auto committed = temp.commit(volume_path(name, format));
    if (!committed && committed.error().errno_value() == EEXIST)
        return fail(fmt::format("volume '{}' already exists in pool '{}'", name, m_name), EEXIST);
    return committed;
}

Result<VolumeInfo> DirectoryPool::create_volume(const std::string& name, uint64_t size_bytes,
                                                ImageFormat format) {
    TRY_VOID(check_new_name(name));
    TRY_VOID(check_size("size_bytes", size_bytes));
    TempFile temp(temp_name_for(volume_path(name, format)));
    TRY_CONTEXT(create_image(temp.path(), create_options(format, size_bytes)),
                fmt::format("creating volume '{}'", name));
    {
        std::lock_guard lock(m_mutex);
        TRY_VOID(commit_locked(temp, name, format));
    }
    return volume_info(name);
}

Result<VolumeInfo> DirectoryPool::clone_volume(const std::string& source, const std::string& name,
                                               CloneMode mode, const Progress& progress) {
    TRY_VOID(check_name("volume name", name));
    TRY_VOID(check_name("source volume name", source));
    TRY_VOID(check_new_name(name));
    if (mode == CloneMode::Linked) {
        {
            // Under the lock, so a concurrent delete of the source sees the clone or fails first.
            std::lock_guard lock(m_mutex);
            Located src = TRY(locate(source));
            TempFile temp(temp_name_for(volume_path(name, ImageFormat::Qcow2)));
            ImageCreateOptions o = create_options(ImageFormat::Qcow2, std::nullopt);
            // Relative to the pool folder (the clone's own folder), so the pool can move.
            o.backing_file = fs::path(src.path).filename().string();
            o.backing_format = src.format;
            TRY_CONTEXT(create_image(temp.path(), o),
                        fmt::format("creating linked clone '{}'", name));
            TRY_VOID(commit_locked(temp, name, ImageFormat::Qcow2));
        }
        VolumeInfo info = TRY(volume_info(name));
        if (progress)
            (void)progress(info.size_bytes, info.size_bytes);  // done: too late to cancel
        return info;
    }
    Located src = TRY(locate(source));
    auto src_dev = TRY(open_image(src.path, open_options(Access::ReadOnly, src.format)));
    TempFile temp(temp_name_for(volume_path(name, src.format)));
    {
        TRY_CONTEXT(create_image(temp.path(), create_options(src.format, src_dev->size())),
                    fmt::format("creating volume '{}'", name));
        auto dst = TRY(open_image(temp.path(), open_options(Access::ReadWrite, src.format)));
        TRY_CONTEXT(copy_image_data(*src_dev, *dst, progress),
                    fmt::format("copying volume '{}' to '{}'", source, name));
    }
    {
        std::lock_guard lock(m_mutex);
        TRY_VOID(commit_locked(temp, name, src.format));
    }
    return volume_info(name);
}

Result<VolumeInfo> DirectoryPool::copy_volume_file(const std::string& source, const std::string& name) {
    TRY_VOID(check_name("volume name", name));
    TRY_VOID(check_name("source volume name", source));
    TRY_VOID(check_new_name(name));
    Located src = TRY(locate(source));
    TempFile temp(temp_name_for(volume_path(name, src.format)));
    std::error_code ec;
    // copy_file_range underneath: a reflink where the file system shares extents.
    fs::copy_file(src.path, temp.path(), fs::copy_options::overwrite_existing, ec);
    if (ec)
        return fail(fmt::format("copying volume '{}' to '{}': {}", source, name, ec.message()), ec.value());
    {
        std::lock_guard lock(m_mutex);
        TRY_VOID(commit_locked(temp, name, src.format));
    }
    return volume_info(name);
}

Result<VolumeInfo> DirectoryPool::resize_volume(const std::string& name, uint64_t new_size) {
    Located where = TRY(locate(name));
    TRY_VOID(check_size("size_bytes", new_size));
    {
        auto dev = TRY(open_image(where.path, open_options(Access::ReadWrite, where.format)));
        if (new_size < dev->size())
            return fail(
                fmt::format(
                    "volume '{}' cannot shrink: size_bytes must be at least its current size {} "
                    "(got {})",
                    name, dev->size(), new_size),
                EINVAL);
        if (new_size > dev->size()) {
            TRY_CONTEXT(dev->resize(new_size), fmt::format("resizing volume '{}'", name));
            TRY_VOID(dev->flush());
        }
    }
    return volume_info(name);
}

Result<void> DirectoryPool::delete_volume(const std::string& name) {
    std::lock_guard lock(m_mutex);
    Located where = TRY(locate(name));
    std::vector<std::string> clones = TRY(clones_of(name));
    if (!clones.empty()) {
        std::string list;
        for (auto& c : clones)
            list += (list.empty() ? "" : ", ") + c;
        return fail(
            fmt::format("volume '{}' has linked clones ({}); delete them first", name, list),
            EBUSY);
    }
    if (::unlink(where.path.c_str()) != 0)
        return fail_errno(fmt::format("deleting volume '{}'", where.path));
    sync_directory(m_path);
    return {};
}

Result<std::string> DirectoryPool::volume_file(const std::string& name) const {
    return TRY(locate(name)).path;
}

Result<VolumeInfo> DirectoryPool::import_volume(const std::string& name, const std::string& file,
                                                const Progress& progress) {
    TRY_VOID(check_new_name(name));
    auto src = open_image(file, open_options(Access::ReadOnly, std::nullopt));
    if (!src) {
        // A missing input file is bad input (400), not a missing volume (404).
        int e = src.error().errno_value() == ENOENT ? EINVAL : src.error().errno_value();
        return fail(Error(fmt::format("import file '{}': {}", file, src.error().describe()), e));
    }
    TempFile temp(temp_name_for(volume_path(name, ImageFormat::Qcow2)));
    {
        TRY_CONTEXT(create_image(temp.path(), create_options(ImageFormat::Qcow2, (*src)->size())),
                    fmt::format("creating volume '{}'", name));
        auto dst =
            TRY(open_image(temp.path(), open_options(Access::ReadWrite, ImageFormat::Qcow2)));
        TRY_CONTEXT(copy_image_data(**src, *dst, progress), fmt::format("importing '{}'", file));
    }
    {
        std::lock_guard lock(m_mutex);
        TRY_VOID(commit_locked(temp, name, ImageFormat::Qcow2));
    }
    return volume_info(name);
}

Result<void> DirectoryPool::export_volume(const std::string& name, const std::string& dest_file,
                                          ImageFormat format, const Progress& progress) {
    Located where = TRY(locate(name));
    if (dest_file.empty())
        return fail("export destination is empty", EINVAL);
    struct stat st {};
    if (::lstat(dest_file.c_str(), &st) == 0)
        return fail(fmt::format("'{}' already exists", dest_file), EEXIST);
    auto src = TRY(open_image(where.path, open_options(Access::ReadOnly, where.format)));
    TempFile temp(temp_name_for(dest_file));
    {
        auto created = create_image(temp.path(), create_options(format, src->size()));
        if (!created) {
            // A missing destination folder is bad input (400), not a missing volume (404).
            int e =
                created.error().errno_value() == ENOENT ? EINVAL : created.error().errno_value();
            return fail(Error(
                fmt::format("export destination '{}': {}", dest_file, created.error().describe()),
                e));
        }
        auto dst = TRY(open_image(temp.path(), open_options(Access::ReadWrite, format)));
        TRY_CONTEXT(copy_image_data(*src, *dst, progress),
                    fmt::format("exporting volume '{}'", name));
    }
    return temp.commit(dest_file);
}

}  // namespace corral::storage::pool
