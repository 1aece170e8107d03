// Moving a volume's bytes over HTTP, for clients that may not name host files (remote ones):
//   PUT /api/v1/volumes/{pool}/{name}/content   a raw or qcow2 image -> a new volume
//   GET /api/v1/volumes/{pool}/{name}/content   a volume -> raw (default) or qcow2 bytes
// Both stream: the body goes to disk as it arrives, and the answer is read from disk as it is
// sent, so neither is held in memory nor bounded by the 16 MiB limit of JSON bodies.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "daemon/api/api_context.h"
#include "daemon/names.h"
#include "storage/endian.h"
#include "storage/qcow2/format.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::daemon {
namespace {

namespace fs = std::filesystem;
using storage::ImageFormat;

constexpr size_t k_chunk = 1 << 20;

/// A file this module created under a hidden name in a pool folder (pool scans skip names
/// starting with '.'), removed when it goes out of scope: a failed or cut upload leaves nothing.
class HiddenTemp {
public:
    /// Creates `<folder>/.<stem>.corral-tmp-XXXXXX` with O_EXCL and mode 0600 (mkostemp):
    /// an unpredictable name that a planted symlink cannot redirect.
    static Result<HiddenTemp> create(const std::string& folder, const std::string& stem) {
        std::string path = fmt::format("{}/.{}.corral-tmp-XXXXXX", folder, stem);
        int fd = ::mkostemp(path.data(), O_CLOEXEC);
        if (fd < 0) return fail_errno(fmt::format("creating a temporary file in {}", folder));
        return HiddenTemp(UniqueFd(fd), std::move(path));
    }
    HiddenTemp(HiddenTemp&& other) noexcept : m_fd(std::move(other.m_fd)), m_path(std::move(other.m_path)) {
        other.m_path.clear();
    }
    HiddenTemp& operator=(HiddenTemp&&) = delete;
    ~HiddenTemp() {
        if (!m_path.empty()) ::unlink(m_path.c_str());
    }
    int fd() const { return m_fd.get(); }
    const std::string& path() const { return m_path; }

private:
    HiddenTemp(UniqueFd fd, std::string path) : m_fd(std::move(fd)), m_path(std::move(path)) {}
    UniqueFd m_fd;
    std::string m_path;
};

/// An upload in the task list. The connection's thread does the work (it owns the body) and
/// reports here; the task's thread passes the reports on until the upload ends, so `GET /tasks`
/// shows an upload like any other long operation.
class UploadTask {
public:
    static ApiResult<std::unique_ptr<UploadTask>> start(TaskManager& tasks, const std::string& target) {
        auto state = std::make_shared<State>();
        auto record = TRY(api(tasks.start("volume.upload", target, [state](TaskProgress& progress) -> Result<std::string> {
            std::unique_lock lock(state->mutex);
            for (;;) {
                state->changed.wait(lock, [&] { return state->dirty || state->outcome; });
                if (state->dirty) {
                    state->dirty = false;
                    progress.report(state->fraction, state->message);
                }
                if (state->outcome) return *state->outcome;
            }
        })));
        return std::unique_ptr<UploadTask>(new UploadTask(std::move(state), record.id));
    }
    ~UploadTask() { finish(fail("the upload was abandoned", ECONNABORTED)); }

    const std::string& id() const { return m_id; }
    void report(double fraction, std::string message) {
        std::lock_guard lock(m_state->mutex);
        m_state->fraction = fraction;
        m_state->message = std::move(message);
        m_state->dirty = true;
        m_state->changed.notify_all();
    }
    /// Ends the task with this outcome (the first call wins).
    void finish(Result<std::string> outcome) {
        std::lock_guard lock(m_state->mutex);
        if (m_state->outcome) return;
        m_state->outcome = std::move(outcome);
        m_state->changed.notify_all();
    }

private:
    struct State {
        std::mutex mutex;
        std::condition_variable changed;
        double fraction = 0;
        std::string message;
        bool dirty = false;
        std::optional<Result<std::string>> outcome;
    };
    UploadTask(std::shared_ptr<State> state, std::string id) : m_state(std::move(state)), m_id(std::move(id)) {}
    std::shared_ptr<State> m_state;
    std::string m_id;
};

/// Image formats we do not take, recognised by their first bytes, so that the refusal can say
/// what to do instead of storing, say, a VMDK as a raw disk.
std::optional<std::string> foreign_format(std::span<const uint8_t> head) {
    auto starts = [&](std::string_view magic) {
        return head.size() >= magic.size() && std::memcmp(head.data(), magic.data(), magic.size()) == 0;
    };
    if (starts("KDMV") || starts("# Disk DescriptorFile")) return "VMDK";
    if (starts("vhdxfile")) return "VHDX";
    if (starts("conectix")) return "VHD";
    if (starts("<<< Oracle VM VirtualBox Disk Image >>>") || starts("<<< Sun VirtualBox Disk Image >>>")) return "VDI";
    if (starts("QFI")) return "qcow (version 1)";
    return std::nullopt;
}

/// Checks an uploaded qcow2 image before anything reads it as a disk: its header parses
/// (storage/qcow2's own parser), it stands alone (a backing file or an external data file
/// would make corrald read a host file of the client's choosing) and its tables are consistent
/// (the check `corral-img check` runs).
ApiResult<void> check_qcow2(const std::string& path, uint64_t size) {
    auto invalid = [](const std::string& why) { return api_fail(400, fmt::format("the body is not a usable qcow2 image: {}", why), "body"); };
    auto file = storage::File::open(path, storage::Access::ReadOnly);
    if (!file) return api_fail(500, file.error().describe());
    uint8_t fixed[storage::qcow2::k_v2_header_length] = {};
    if (size < sizeof fixed) return invalid(fmt::format("{} bytes is shorter than a qcow2 header", size));
    if (auto read = file->read_exact(0, fixed); !read) return api_fail(500, read.error().describe());
    const uint32_t cluster_bits = storage::load_be32(fixed + 20);
    if (cluster_bits < storage::qcow2::k_min_cluster_bits || cluster_bits > storage::qcow2::k_max_cluster_bits)
        return invalid(fmt::format("cluster_bits {} is out of range", cluster_bits));
    // The header, its extensions and the backing file name all live in the first cluster.
    std::vector<uint8_t> first(std::min<uint64_t>(size, 1ull << cluster_bits));
    if (auto read = file->read_exact(0, first); !read) return api_fail(500, read.error().describe());
    auto header = storage::qcow2::parse_header(first, size);
    if (!header) return invalid(header.error().message());
    if (!header->backing_file.empty())
        return invalid(fmt::format("it has a backing file ('{}'); upload a standalone image (qemu-img convert -O qcow2 "
                                   "flattens it)",
                                   header->backing_file));
    if (header->incompatible_features & storage::qcow2::k_incompat_data_file)
        return invalid("its data lives in an external data file; upload a standalone image");
    storage::qcow2::OpenOptions options;
    options.access = storage::Access::ReadOnly;
    auto image = storage::qcow2::Qcow2Image::open(
        std::move(*file), options, [](const storage::qcow2::Header&) -> Result<std::unique_ptr<storage::BlockDevice>> {
            return fail("a backing file was not expected", EINVAL);
        });
    if (!image) return invalid(image.error().message());
    auto checked = (*image)->check(storage::qcow2::Repair::No);
    if (!checked) return invalid(checked.error().message());
    if (checked->corruptions > 0 || checked->check_errors > 0)
        return invalid(fmt::format("'qemu-img check' would find {} corruption(s){}", checked->corruptions + checked->check_errors,
                                   checked->messages.empty() ? "" : ": " + checked->messages.front()));
    return {};
}

/// Checks that the uploaded file is an image we can keep: qcow2 (checked whole), or a raw disk.
ApiResult<void> check_image(int fd, const std::string& path, uint64_t size) {
    if (size == 0) return api_fail(400, "the body is empty: send a raw or qcow2 disk image", "body");
    uint8_t head[64] = {};
    const ssize_t got = ::pread(fd, head, sizeof head, 0);
    if (got < 0) return api_fail(500, fmt::format("reading the upload back: {}", std::strerror(errno)));
    const std::span<const uint8_t> start(head, size_t(got));
    if (got >= 4 && storage::load_be32(head) == storage::qcow2::k_magic) return check_qcow2(path, size);
    if (auto other = foreign_format(start))
        return api_fail(400,
                        fmt::format("the body is a {} image; corrald takes raw or qcow2 (qemu-img convert -O qcow2 "
                                    "turns it into one)",
                                    *other),
                        "body");
    if (size % 512 != 0)
        return api_fail(400,
                        fmt::format("the body is not a qcow2 image, and as a raw disk its size ({} bytes) must be a "
                                    "multiple of 512",
                                    size),
                        "body");
    return {};
}

/// Writes `data` at `offset`, leaving a hole where it is all zeros (raw images are mostly zeros).
Result<void> write_sparse(int fd, uint64_t offset, std::span<const char> data) {
    if (std::all_of(data.begin(), data.end(), [](char c) { return c == 0; })) return {};
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, off_t(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return fail_errno("writing the upload");
        }
        done += size_t(n);
    }
    return {};
}

ApiResult<StreamResponse> upload_volume(const HttpRequest& request, const PathParams& params, BodyReader& body,
                                        ApiContext& context) {
    const std::string& pool_name = params.at("pool");
    const std::string& name = params.at("name");
    for (const auto& [key, value] : request.query)
        return api_fail(400, fmt::format("unknown query parameter '{}' (the format is read from the image)", key), key);
    TRY_VOID(validate_name(name, "volume name", "name"));
    auto* pool = TRY(api(context.storage.pool(pool_name), "pool"));
    auto record = TRY(api(context.inventory.get_pool(pool_name), "pool"));
    if (pool->volume_info(name))
        return api_fail(409, fmt::format("a volume named {} already exists in pool {}", name, pool_name), "name");
    const auto usage = TRY(api(pool->usage()));
    const uint64_t limit = context.max_upload_bytes;
    auto too_big = [&](uint64_t bytes) -> ApiError {
        if (bytes > limit)
            return {413, "Content-Length",
                    fmt::format("the image is larger than uploads may be ({} bytes; corrald --max-upload)", limit)};
        return {507, "Content-Length",
                fmt::format("pool {} has {} bytes free, less than the image ({} bytes)", pool_name, usage.available_bytes,
                            bytes)};
    };
    const auto declared = body.content_length();
    if (declared && (*declared > limit || *declared > usage.available_bytes)) return std::unexpected(too_big(*declared));

    const std::string target = pool_name + "/" + name;
    auto task = TRY(UploadTask::start(context.tasks, target));
    auto outcome = [&]() -> ApiResult<storage::pool::VolumeInfo> {
        auto temp = TRY(api(HiddenTemp::create(record.path, name + ".upload")));
        std::vector<char> chunk(k_chunk);
        uint64_t received = 0;
        auto last_report = std::chrono::steady_clock::now();
        for (;;) {
            auto got = body.read(chunk);
            // The client went away or stalled: 400 (it will not see it), and the temp file goes.
            if (!got) return api_fail(400, fmt::format("the upload was cut: {}", got.error().message()), "body");
            if (*got == 0) break;
            if (received + *got > limit || received + *got > usage.available_bytes)
                return std::unexpected(too_big(received + *got));
            if (auto written = write_sparse(temp.fd(), received, std::span<const char>(chunk.data(), *got)); !written) {
                if (written.error().errno_value() == ENOSPC || written.error().errno_value() == EDQUOT)
                    return api_fail(507, fmt::format("pool {} ran out of space during the upload", pool_name), "Content-Length");
                return std::unexpected(api_error_from(written.error()));
            }
            received += *got;
            if (auto now = std::chrono::steady_clock::now(); now - last_report > std::chrono::milliseconds(200)) {
                last_report = now;
                task->report(declared && *declared ? 0.5 * double(received) / double(*declared) : 0.0,
                             fmt::format("received {} MiB{}", received >> 20,
                                         declared ? fmt::format(" of {}", *declared >> 20) : ""));
            }
        }
        if (::ftruncate(temp.fd(), off_t(received)) != 0)
            return std::unexpected(api_error_from(Error(fmt::format("sizing the upload: {}", std::strerror(errno)), errno)));
        TRY_VOID(check_image(temp.fd(), temp.path(), received));
        task->report(0.5, fmt::format("received {} MiB; importing", received >> 20));
        // The checked file becomes a volume the way `volume import` makes one (a sparse qcow2).
        auto info = pool->import_volume(name, temp.path(), [&](uint64_t done, uint64_t total) {
            task->report(0.5 + (total ? 0.5 * double(done) / double(total) : 0.5),
                         fmt::format("imported {} of {} MiB", done >> 20, total >> 20));
            return storage::Proceed::Continue;  // an upload ends when its client goes, not by cancel
        });
        if (!info) return std::unexpected(api_error_from(info.error(), "name"));
        return *info;
    }();
    if (!outcome) {
        task->finish(fail(outcome.error().message, EINVAL));
        return std::unexpected(outcome.error());
    }
    task->finish(fmt::format("uploaded {} ({} MiB, qcow2)", target, outcome->size_bytes >> 20));
    context.events.publish({{"kind", "volume.created"}, {"target", target}});
    StreamResponse response;
    auto json = volume_json(pool_name, *outcome, context);
    json["task"] = task->id();
    response.head = json_response(201, json);
    return response;
}

/// Streams `fd` from its start, `size` bytes.
Result<void> send_file(int fd, uint64_t size, BodyWriter& out) {
    std::vector<char> chunk(k_chunk);
    uint64_t offset = 0;
    while (offset < size) {
        const size_t want = size_t(std::min<uint64_t>(chunk.size(), size - offset));
        ssize_t n = ::pread(fd, chunk.data(), want, off_t(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return fail(fmt::format("reading the volume at {}: {}", offset, n < 0 ? std::strerror(errno) : "end of file"), EIO);
        TRY_VOID(out.write(std::string_view(chunk.data(), size_t(n))));
        offset += uint64_t(n);
    }
    return {};
}

ApiResult<StreamResponse> download_volume(const HttpRequest& request, const PathParams& params, ApiContext& context) {
    const std::string& pool_name = params.at("pool");
    const std::string& name = params.at("name");
    for (const auto& [key, value] : request.query)
        if (key != "format") return api_fail(400, fmt::format("unknown query parameter '{}' (allowed: format)", key), key);
    const std::string format = request.query_or("format", "raw");
    if (format != "raw" && format != "qcow2")
        return api_fail(400, fmt::format("format '{}' is not one of raw, qcow2", format), "format");
    auto* pool = TRY(api(context.storage.pool(pool_name), "pool"));
    auto record = TRY(api(context.inventory.get_pool(pool_name), "pool"));
    auto info = TRY(api(pool->volume_info(name), "name"));

    StreamResponse response;
    response.head.status = 200;
    response.head.content_type = "application/octet-stream";
    response.head.headers.emplace_back("Content-Disposition", fmt::format("attachment; filename=\"{}.{}\"", name, format));
    if (format == "raw") {
        storage::ImageOpenOptions options;
        options.access = storage::Access::ReadOnly;
        options.format = info.format;
        std::shared_ptr<storage::BlockDevice> device = TRY(api(storage::open_image(info.path, options), "name"));
        response.content_length = device->size();
        response.body = [device](BodyWriter& out) -> Result<void> {
            std::vector<uint8_t> chunk(k_chunk);
            for (uint64_t offset = 0; offset < device->size(); offset += chunk.size()) {
                const size_t want = size_t(std::min<uint64_t>(chunk.size(), device->size() - offset));
                TRY_VOID(device->read_at(offset, std::span<uint8_t>(chunk.data(), want)));
                TRY_VOID(out.write(std::string_view(reinterpret_cast<const char*>(chunk.data()), want)));
            }
            return {};
        };
        return response;
    }
    // qcow2: the pool's own export (a compact, standalone image) into a hidden folder of the
    // pool, opened and unlinked at once: the open file is sent, nothing stays behind.
    std::string folder = fmt::format("{}/.{}.download.corral-tmp-XXXXXX", record.path, name);
    if (!::mkdtemp(folder.data())) return std::unexpected(api_error_from(Error(fmt::format("creating {}: {}", folder, std::strerror(errno)), errno)));
    const std::string file = folder + "/" + name + ".qcow2";
    auto exported = pool->export_volume(name, file, ImageFormat::Qcow2, {});
    auto fd = std::make_shared<UniqueFd>(exported ? ::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW) : -1);
    ::unlink(file.c_str());
    ::rmdir(folder.c_str());
    if (!exported) return std::unexpected(api_error_from(exported.error(), "name"));
    struct stat st {};
    if (!fd->valid() || ::fstat(fd->get(), &st) != 0)
        return std::unexpected(api_error_from(Error(fmt::format("opening the exported image: {}", std::strerror(errno)), errno)));
    response.content_length = uint64_t(st.st_size);
    response.body = [fd, size = uint64_t(st.st_size)](BodyWriter& out) { return send_file(fd->get(), size, out); };
    return response;
}

}  // namespace

void add_volume_content_routes(Router& router, ApiContext& context) {
    router.add_streaming("PUT", api_path("/volumes/{pool}/{name}/content"),
                         [&context](const HttpRequest& request, const PathParams& params, BodyReader& body) {
                             return upload_volume(request, params, body, context);
                         });
    router.add_streaming("GET", api_path("/volumes/{pool}/{name}/content"),
                         [&context](const HttpRequest& request, const PathParams& params, BodyReader&) {
                             return download_volume(request, params, context);
                         });
}

}  // namespace corral::daemon
