#pragma once

// A RAM disk implementing corral_storage's BlockDevice, for virtio-blk tests: optional
// read-only flag, injected I/O failures and a delay on every read/write (a "slow disk").

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "storage/block_device.h"

namespace corral::vmm::virtio::testing {

class MemoryDisk final : public storage::BlockDevice {
public:
    explicit MemoryDisk(size_t size, bool read_only = false) : bytes(size), ro(read_only) {}
    std::string format_name() const override { return "memory"; }
    uint64_t size() const override { return bytes.size(); }
    bool read_only() const override { return ro; }
    Result<void> read_at(uint64_t offset, std::span<uint8_t> buffer) override {
        std::this_thread::sleep_for(delay);
        if (fail_io) return fail("injected");
        std::memcpy(buffer.data(), bytes.data() + offset, buffer.size());
        return {};
    }
    Result<void> write_at(uint64_t offset, std::span<const uint8_t> data) override {
        std::this_thread::sleep_for(delay);
        if (fail_io) return fail("injected");
        std::memcpy(bytes.data() + offset, data.data(), data.size());
        return {};
    }
    Result<void> flush() override {
        ++flushes;
        return {};
    }
    Result<void> discard(uint64_t offset, uint64_t length) override { return write_zeroes(offset, length); }
    Result<void> write_zeroes(uint64_t offset, uint64_t length) override {
        std::memset(bytes.data() + offset, 0, length);
        return {};
    }
    Result<void> resize(uint64_t) override { return fail("no"); }
    Result<storage::Extent> block_status(uint64_t offset, uint64_t length) override {
        return storage::Extent{.offset = offset, .length = length};
    }

    std::vector<uint8_t> bytes;
    bool ro;
    std::atomic<bool> fail_io{false};
    std::atomic<int> flushes{0};
    std::chrono::milliseconds delay{0};
};

}  // namespace corral::vmm::virtio::testing
