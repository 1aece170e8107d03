#include "storage/image.h"

#include <fmt/format.h>
#include <limits.h>
#include <stdlib.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "storage/endian.h"
#include "storage/qcow2/qcow2_image.h"
#include "storage/raw_device.h"

namespace corral::storage {

Result<ImageFormat> parse_format(const std::string& name) {
    if (name == "raw") return ImageFormat::Raw;
    if (name == "qcow2") return ImageFormat::Qcow2;
    return fail(fmt::format("unknown image format '{}' (allowed: raw, qcow2)", name));
}

const char* format_name(ImageFormat format) { return format == ImageFormat::Raw ? "raw" : "qcow2"; }

Result<ImageFormat> probe_format(const File& file) {
    uint8_t magic[4] = {};
    uint64_t size = TRY(file.size());
    if (size >= 4) TRY_VOID(file.read_exact(0, magic));
    return load_be32(magic) == qcow2::k_magic ? ImageFormat::Qcow2 : ImageFormat::Raw;
}

std::string resolve_backing_path(const std::string& image_path, const std::string& backing) {
    if (backing.empty() || backing[0] == '/') return backing;
    auto slash = image_path.rfind('/');
    if (slash == std::string::npos) return backing;
    return image_path.substr(0, slash + 1) + backing;
}

namespace {

Result<std::unique_ptr<BlockDevice>> open_chain(const std::string& path, const ImageOpenOptions& options,
                                                std::vector<std::string>& chain) {
    char real[PATH_MAX];
    std::string canonical = ::realpath(path.c_str(), real) ? std::string(real) : path;
    for (const auto& seen : chain)
        if (seen == canonical)
            return fail(fmt::format("backing chain loop: '{}' is already in the chain", path));
    if (int(chain.size()) > k_max_backing_depth)
        return fail(fmt::format("backing chain is deeper than {} images (at '{}')", k_max_backing_depth, path));
    chain.push_back(canonical);

    File file = TRY(File::open(path, options.access));
    ImageFormat format = options.format ? *options.format : TRY(probe_format(file));
    if (format == ImageFormat::Raw) {
        if (!options.snapshot.empty())
            return fail(fmt::format("'{}' is a raw image, which cannot hold snapshots (snapshot '{}' was asked for)",
                                    path, options.snapshot),
                        EINVAL);
        auto raw = TRY(RawDevice::open(std::move(file)));
        return std::unique_ptr<BlockDevice>(std::move(raw));
    }
    qcow2::OpenOptions q{.access = options.access, .cache_bytes = options.cache_bytes, .snapshot = options.snapshot};
    auto opener = [&](const qcow2::Header& header) -> Result<std::unique_ptr<BlockDevice>> {
        ImageOpenOptions backing{.access = Access::ReadOnly, .format = std::nullopt,
                                 .cache_bytes = options.cache_bytes};
        if (header.backing_format) backing.format = TRY(parse_format(*header.backing_format));
        std::string resolved = resolve_backing_path(path, header.backing_file);
        return TRY_CONTEXT(open_chain(resolved, backing, chain), fmt::format("opening backing file of '{}'", path));
    };
    auto image = TRY(qcow2::Qcow2Image::open(std::move(file), q, opener));
    return std::unique_ptr<BlockDevice>(std::move(image));
}

}  // namespace

Result<std::unique_ptr<BlockDevice>> open_image(const std::string& path, const ImageOpenOptions& options) {
    std::vector<std::string> chain;
    return open_chain(path, options, chain);
}

Result<void> create_image(const std::string& path, const ImageCreateOptions& options) {
    uint64_t size = 0;
    std::optional<std::string> backing_format;
    if (!options.backing_file.empty()) {
        if (options.format != ImageFormat::Qcow2) return fail("a backing file needs the qcow2 format");
        std::string resolved = resolve_backing_path(path, options.backing_file);
        ImageOpenOptions o{.access = Access::ReadOnly, .format = options.backing_format, .cache_bytes = 1u << 20};
        auto backing = TRY_CONTEXT(open_image(resolved, o), "opening the backing file");
        size = backing->size();
        backing_format = backing->format_name();
    }
    if (options.size) size = *options.size;
    else if (options.backing_file.empty()) return fail("a size is needed when there is no backing file");
    if (options.format == ImageFormat::Raw) return RawDevice::create(path, size);
    if (options.cluster_size < 512 || options.cluster_size > (2u << 20) ||
        (options.cluster_size & (options.cluster_size - 1)))
        return fail(fmt::format("cluster size {} is invalid (allowed: a power of two from 512 to 2M)",
                                options.cluster_size));
    qcow2::CreateOptions q;
    q.size = size;
    q.cluster_bits = uint32_t(__builtin_ctz(options.cluster_size));
    q.version = options.version;
    q.backing_file = options.backing_file;
    q.backing_format = backing_format;
    q.compression = options.compression;
    return qcow2::Qcow2Image::create(path, q);
}

}  // namespace corral::storage
