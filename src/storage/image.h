#pragma once

// Opening and creating images of any format: format probing, backing chains (resolved relative
// to the image's directory, bounded depth, loop detection).

#include <memory>
#include <optional>
#include <string>

#include "storage/block_device.h"
#include "storage/file.h"
#include "storage/qcow2/format.h"

namespace corral::storage {

enum class ImageFormat { Raw, Qcow2 };

/// "raw" / "qcow2" -> ImageFormat; fails naming the allowed values.
Result<ImageFormat> parse_format(const std::string& name);
const char* format_name(ImageFormat format);

constexpr int k_max_backing_depth = 64;

struct ImageOpenOptions {
    Access access = Access::ReadOnly;
    std::optional<ImageFormat> format{};  ///< probed when empty
    size_t cache_bytes = 32u << 20;
    /// Non-empty: read this internal qcow2 snapshot of the image (not of its backing files)
    /// instead of its active layer; needs read-only access and a qcow2 image.
    std::string snapshot{};
};

/// Probes the format of an open file (qcow2 magic, else raw).
Result<ImageFormat> probe_format(const File& file);

/// Opens an image and its whole backing chain (backing files read-only).
Result<std::unique_ptr<BlockDevice>> open_image(const std::string& path, const ImageOpenOptions& options);

struct ImageCreateOptions {
    ImageFormat format = ImageFormat::Qcow2;
    std::optional<uint64_t> size;  ///< defaults to the backing file's size
    uint32_t cluster_size = 65536;
    std::string backing_file;
    std::optional<ImageFormat> backing_format;  ///< probed when empty
    qcow2::CompressionType compression = qcow2::CompressionType::Zlib;
    uint32_t version = 3;
};

Result<void> create_image(const std::string& path, const ImageCreateOptions& options);

/// Resolves a backing file name as QEMU does: relative names are relative to the directory of
/// the image that names them.
std::string resolve_backing_path(const std::string& image_path, const std::string& backing);

}  // namespace corral::storage
