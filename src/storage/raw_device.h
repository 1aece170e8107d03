#pragma once

#include "storage/block_device.h"
#include "storage/file.h"

namespace corral::storage {

/// A raw image: guest offset == file offset. Discard punches holes in the host file.
class RawDevice final : public BlockDevice {
public:
    explicit RawDevice(File file, uint64_t size) : m_file(std::move(file)), m_size(size) {}
    static Result<std::unique_ptr<RawDevice>> open(File file);
    /// Creates (or truncates) a sparse raw file of `size` bytes.
    static Result<void> create(const std::string& path, uint64_t size);

    std::string format_name() const override { return "raw"; }
    uint64_t size() const override { return m_size; }
    bool read_only() const override { return !m_file.writable(); }
    Result<void> read_at(uint64_t offset, std::span<uint8_t> buffer) override;
    Result<void> write_at(uint64_t offset, std::span<const uint8_t> data) override;
    Result<void> flush() override;
    uint64_t discard_granularity() const override { return 4096; }
    Result<void> discard(uint64_t offset, uint64_t length) override;
    Result<void> write_zeroes(uint64_t offset, uint64_t length) override;
    Result<void> resize(uint64_t new_size) override;
    Result<Extent> block_status(uint64_t offset, uint64_t max_length) override;
    const File& file() const { return m_file; }

private:
    File m_file;
    uint64_t m_size;
};

}  // namespace corral::storage
