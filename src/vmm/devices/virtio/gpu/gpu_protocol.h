#pragma once

// virtio-gpu wire format (virtio 1.2 §5.7.6), the 2D subset: little-endian structures the driver
// puts in controlq/cursorq buffers. Read from guest bytes with read_le() only (no casts of guest
// memory), so a short or misaligned buffer cannot be misread.

#include <cstdint>
#include <cstring>
#include <span>

namespace corral::vmm::virtio::gpu {

/// Command and response types (§5.7.6.7).
enum : uint32_t {
    k_cmd_get_display_info = 0x0100,
    k_cmd_resource_create_2d = 0x0101,
    k_cmd_resource_unref = 0x0102,
    k_cmd_set_scanout = 0x0103,
    k_cmd_resource_flush = 0x0104,
    k_cmd_transfer_to_host_2d = 0x0105,
    k_cmd_resource_attach_backing = 0x0106,
    k_cmd_resource_detach_backing = 0x0107,
    k_cmd_update_cursor = 0x0300,
    k_cmd_move_cursor = 0x0301,

    k_resp_ok_nodata = 0x1100,
    k_resp_ok_display_info = 0x1101,

    k_resp_err_unspec = 0x1200,
    k_resp_err_out_of_memory = 0x1201,
    k_resp_err_invalid_scanout_id = 0x1202,
    k_resp_err_invalid_resource_id = 0x1203,
    k_resp_err_invalid_context_id = 0x1204,
    k_resp_err_invalid_parameter = 0x1205,
};

/// virtio_gpu_ctrl_hdr.flags: the driver waits for this command's fence (§5.7.6.7).
constexpr uint32_t k_flag_fence = 1;

/// Pixel formats (enum virtio_gpu_formats), named by their bytes in memory order.
enum : uint32_t {
    k_format_b8g8r8a8 = 1,
    k_format_b8g8r8x8 = 2,
    k_format_a8r8g8b8 = 3,
    k_format_x8r8g8b8 = 4,
    k_format_r8g8b8a8 = 67,
    k_format_x8b8g8r8 = 68,
    k_format_a8b8g8r8 = 121,
    k_format_r8g8b8x8 = 134,
};

constexpr uint32_t k_max_scanouts = 16;  // VIRTIO_GPU_MAX_SCANOUTS: display info always has 16 entries
constexpr size_t k_header_size = 24;     // virtio_gpu_ctrl_hdr
constexpr size_t k_rect_size = 16;       // virtio_gpu_rect
constexpr size_t k_mem_entry_size = 16;  // virtio_gpu_mem_entry
constexpr size_t k_display_info_size = k_header_size + k_max_scanouts * (k_rect_size + 8);
constexpr uint32_t k_config_size = 16;   // events_read, events_clear, num_scanouts, num_capsets

/// A little-endian field at `offset` of `bytes`; the caller checked the length.
template <typename T>
T read_le(std::span<const uint8_t> bytes, size_t offset) {
    T value{};
    std::memcpy(&value, bytes.data() + offset, sizeof(T));  // x86-64 is little-endian
    return value;
}
template <typename T>
void write_le(std::span<uint8_t> bytes, size_t offset, T value) {
    std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

struct WireRect {
    uint32_t x, y, width, height;
};
inline WireRect read_rect(std::span<const uint8_t> bytes, size_t offset) {
    return {read_le<uint32_t>(bytes, offset), read_le<uint32_t>(bytes, offset + 4),
            read_le<uint32_t>(bytes, offset + 8), read_le<uint32_t>(bytes, offset + 12)};
}

}  // namespace corral::vmm::virtio::gpu
