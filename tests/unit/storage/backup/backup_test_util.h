#pragma once

// Helpers for the backup tests: images with known content (written through corral's own
// storage code), shell commands (qemu-img is the oracle), a repository's file listing.

#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "../shell_run.h"
#include "../test_dir.h"
#include "storage/image.h"

namespace corral::storage::backup::testing {

using storage::testing::Command;
using storage::testing::have_qemu_bitmap_tools;
using storage::testing::have_qemu_img;
using storage::testing::run;
using storage::testing::TestDir;

constexpr uint64_t k_mib = 1u << 20;

/// Bytes that do not compress and never repeat between seeds.
inline std::vector<uint8_t> random_bytes(size_t size, uint64_t seed) {
    std::vector<uint8_t> out(size);
    std::mt19937_64 rng(seed);
    for (size_t i = 0; i + 8 <= size; i += 8) {
        uint64_t v = rng();
        std::memcpy(&out[i], &v, 8);
    }
    return out;
}

/// Creates an image of `size` bytes and writes `writes` (offset -> data) into it.
inline void make_image(const std::string& path, ImageFormat format, uint64_t size,
                       const std::map<uint64_t, std::vector<uint8_t>>& writes) {
    ImageCreateOptions options;
    options.format = format;
    options.size = size;
    auto created = create_image(path, options);
    ASSERT_TRUE(created) << created.error().describe();
    auto device = open_image(path, ImageOpenOptions{.access = Access::ReadWrite, .format = format});
    ASSERT_TRUE(device) << device.error().describe();
    for (const auto& [offset, data] : writes) {
        auto written = (*device)->write_at(offset, data);
        ASSERT_TRUE(written) << written.error().describe();
    }
    ASSERT_TRUE((*device)->flush());
}

/// Every regular file under `root` with its size (the repository's visible state).
inline std::map<std::string, uint64_t> file_listing(const std::string& root) {
    std::map<std::string, uint64_t> out;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(root))
        if (entry.is_regular_file())
            out[entry.path().string()] = entry.file_size();
    return out;
}

/// Number of chunk files in a repository.
inline size_t chunk_files(const std::string& repo) {
    size_t n = 0;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(repo + "/chunks"))
        if (entry.is_regular_file() && entry.path().filename().string().size() == 64)
            ++n;
    return n;
}

}  // namespace corral::storage::backup::testing
