#pragma once

// The input shared by the virtio fuzz targets and their seeds: two control bytes, then an image
// of the guest's RAM from address 0 (shorter inputs leave the rest zero). Ring 0 (the queue under
// test: any queue, virtio-blk's request queue, virtio-net's TX queue) and ring 1 (virtio-net's
// RX queue) sit at fixed addresses; buffers go from k_buffers up. The rings fit a queue of 256.

#include <cstdint>

namespace corral::fuzz::virtio_layout {

constexpr uint64_t k_memory = 64 * 1024;
constexpr size_t k_prefix = 2;  // [0]: feature bits (target-specific), [1]: log2 of the queue size
constexpr uint64_t k_ring0_descriptors = 0x0000;
constexpr uint64_t k_ring0_avail = 0x1000;
constexpr uint64_t k_ring0_used = 0x1800;
constexpr uint64_t k_ring1_descriptors = 0x2000;
constexpr uint64_t k_ring1_avail = 0x3000;
constexpr uint64_t k_ring1_used = 0x3800;
constexpr uint64_t k_buffers = 0x4000;

/// The queue size byte's meaning: 1 << (byte % 9), so 1..256.
inline uint16_t queue_size(uint8_t byte) { return static_cast<uint16_t>(1u << (byte % 9)); }

}  // namespace corral::fuzz::virtio_layout
