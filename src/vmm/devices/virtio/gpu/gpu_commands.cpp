#include "vmm/devices/virtio/gpu/gpu_commands.h"

#include <algorithm>
#include <cstring>

#include "vmm/devices/virtio/gpu/gpu_protocol.h"

namespace corral::vmm::virtio::gpu {
namespace {

constexpr uint32_t k_bytes_per_pixel = 4;

bool known_format(uint32_t format) {
    switch (format) {
        case k_format_b8g8r8a8:
        case k_format_b8g8r8x8:
        case k_format_a8r8g8b8:
        case k_format_x8r8g8b8:
        case k_format_r8g8b8a8:
        case k_format_x8b8g8r8:
        case k_format_a8b8g8r8:
        case k_format_r8g8b8x8: return true;
    }
    return false;
}

/// Where blue, green and red are in a pixel of `format` (bytes in memory order).
struct Channels {
    uint8_t blue, green, red;
};
Channels channels(uint32_t format) {
    switch (format) {
        case k_format_a8r8g8b8:
        case k_format_x8r8g8b8: return {3, 2, 1};
        case k_format_r8g8b8a8:
        case k_format_r8g8b8x8: return {2, 1, 0};
        case k_format_x8b8g8r8:
        case k_format_a8b8g8r8: return {1, 2, 3};
        default: return {0, 1, 2};
    }
}

/// Whether [x, x + width) x [y, y + height) lies inside a `max_width` x `max_height` area
/// (64-bit sums: a guest's x + width must not wrap around).
bool inside(const WireRect& rect, uint32_t max_width, uint32_t max_height) {
    return uint64_t{rect.x} + rect.width <= max_width && uint64_t{rect.y} + rect.height <= max_height;
}

}  // namespace

GpuCommands::GpuCommands(const GuestMemory& memory, std::shared_ptr<display::Framebuffer> display)
    : m_memory(memory), m_display(std::move(display)),
      m_preferred_width(m_display->width()), m_preferred_height(m_display->height()) {}

void GpuCommands::reset() {
    m_resources.clear();
    m_host_bytes = 0;
    m_scanout_resource = 0;
}

size_t GpuCommands::execute(std::span<const uint8_t> request, std::span<uint8_t> response) {
    std::fill(response.begin(), response.end(), 0);
    if (request.size() < k_header_size) {
        write_le<uint32_t>(response, 0, k_resp_err_unspec);
        return k_header_size;
    }
    uint32_t type = read_le<uint32_t>(request, 0);
    uint32_t flags = read_le<uint32_t>(request, 4);
    // A fenced command's answer carries its fence (the driver waits for it, §5.7.6.7).
    if (flags & k_flag_fence) {
        write_le<uint32_t>(response, 4, k_flag_fence);
        std::memcpy(response.data() + 8, request.data() + 8, 16);  // fence_id, ctx_id, ring_idx
    }
    size_t length = k_header_size;
    uint32_t answer = k_resp_err_unspec;
    switch (type) {
        case k_cmd_get_display_info: {
            // One scanout, enabled, at the preferred size; the other 15 entries stay zero.
            write_le<uint32_t>(response, k_header_size + 8, m_preferred_width);
            write_le<uint32_t>(response, k_header_size + 12, m_preferred_height);
            write_le<uint32_t>(response, k_header_size + 16, 1);
            answer = k_resp_ok_display_info;
            length = k_display_info_size;
            break;
        }
        case k_cmd_resource_create_2d: answer = create_2d(request); break;
        case k_cmd_resource_unref: answer = unref(request); break;
        case k_cmd_set_scanout: answer = set_scanout(request); break;
        case k_cmd_resource_flush: answer = flush(request); break;
        case k_cmd_transfer_to_host_2d: answer = transfer_to_host(request); break;
        case k_cmd_resource_attach_backing: answer = attach_backing(request); break;
        case k_cmd_resource_detach_backing: answer = detach_backing(request); break;
        default: answer = k_resp_err_unspec; break;  // 3D, blob, EDID, capsets: not offered
    }
    write_le<uint32_t>(response, 0, answer);
    return length;
}

void GpuCommands::execute_cursor(std::span<const uint8_t>) {}

uint32_t GpuCommands::create_2d(std::span<const uint8_t> request) {
    if (request.size() < k_header_size + 16) return k_resp_err_unspec;
    uint32_t id = read_le<uint32_t>(request, 24);
    uint32_t format = read_le<uint32_t>(request, 28);
    uint32_t width = read_le<uint32_t>(request, 32);
    uint32_t height = read_le<uint32_t>(request, 36);
    if (id == 0 || m_resources.contains(id)) return k_resp_err_invalid_resource_id;
    if (!known_format(format) || width == 0 || height == 0 || width > k_max_resource_side ||
        height > k_max_resource_side)
        return k_resp_err_invalid_parameter;
    uint64_t bytes = uint64_t{width} * height * k_bytes_per_pixel;  // at most 2^30: no overflow
    if (m_resources.size() >= k_max_resources || bytes > k_max_host_bytes - m_host_bytes)
        return k_resp_err_out_of_memory;
    Resource resource{.format = format, .width = width, .height = height, .pixels = {}, .backing = {}};
    try {
        resource.pixels.assign(bytes, 0);
    } catch (const std::bad_alloc&) {
        return k_resp_err_out_of_memory;
    }
    m_host_bytes += bytes;
    m_resources.emplace(id, std::move(resource));
    return k_resp_ok_nodata;
}

GpuCommands::Resource* GpuCommands::find_resource(uint32_t id) {
    auto found = m_resources.find(id);
    return found == m_resources.end() ? nullptr : &found->second;
}

uint32_t GpuCommands::unref(std::span<const uint8_t> request) {
    if (request.size() < k_header_size + 8) return k_resp_err_unspec;
    uint32_t id = read_le<uint32_t>(request, 24);
    const Resource* resource = find_resource(id);
    if (!resource) return k_resp_err_invalid_resource_id;
    if (m_scanout_resource == id) m_scanout_resource = 0;  // the screen keeps its last picture
    m_host_bytes -= resource->pixels.size();
    m_resources.erase(id);
    return k_resp_ok_nodata;
}

uint32_t GpuCommands::set_scanout(std::span<const uint8_t> request) {
    if (request.size() < k_header_size + k_rect_size + 8) return k_resp_err_unspec;
    WireRect rect = read_rect(request, 24);
    uint32_t scanout = read_le<uint32_t>(request, 40);
    uint32_t id = read_le<uint32_t>(request, 44);
    if (scanout != 0) return k_resp_err_invalid_scanout_id;
    if (id == 0) {  // the driver turns the scanout off
        m_scanout_resource = 0;
        return k_resp_ok_nodata;
    }
    const Resource* found = find_resource(id);
    if (!found) return k_resp_err_invalid_resource_id;
    const Resource& resource = *found;
    if (rect.width == 0 || rect.height == 0 || !inside(rect, resource.width, resource.height) ||
        rect.width > display::Framebuffer::k_max_width || rect.height > display::Framebuffer::k_max_height)
        return k_resp_err_invalid_parameter;
    m_scanout_resource = id;
    m_scanout_x = rect.x;
    m_scanout_y = rect.y;
    m_scanout_width = rect.width;
    m_scanout_height = rect.height;
    if (m_display->width() != rect.width || m_display->height() != rect.height)
        m_display->resize(rect.width, rect.height);
    show(resource, rect.x, rect.y, rect.width, rect.height);
    return k_resp_ok_nodata;
}

uint32_t GpuCommands::flush(std::span<const uint8_t> request) {
    if (request.size() < k_header_size + k_rect_size + 8) return k_resp_err_unspec;
    WireRect rect = read_rect(request, 24);
    uint32_t id = read_le<uint32_t>(request, 40);
    const Resource* found = find_resource(id);
    if (!found) return k_resp_err_invalid_resource_id;
    const Resource& resource = *found;
    if (!inside(rect, resource.width, resource.height)) return k_resp_err_invalid_parameter;
    if (id != m_scanout_resource) return k_resp_ok_nodata;  // not on screen
    // The part of the flushed rectangle the scanout shows.
    uint32_t left = std::max(rect.x, m_scanout_x);
    uint32_t top = std::max(rect.y, m_scanout_y);
    uint32_t right = std::min(rect.x + rect.width, m_scanout_x + m_scanout_width);  // both <= resource.width
    uint32_t bottom = std::min(rect.y + rect.height, m_scanout_y + m_scanout_height);
    if (left < right && top < bottom) show(resource, left, top, right - left, bottom - top);
    return k_resp_ok_nodata;
}

uint32_t GpuCommands::transfer_to_host(std::span<const uint8_t> request) {
    if (request.size() < k_header_size + k_rect_size + 16) return k_resp_err_unspec;
    WireRect rect = read_rect(request, 24);
    uint64_t offset = read_le<uint64_t>(request, 40);
    uint32_t id = read_le<uint32_t>(request, 48);
    Resource* found = find_resource(id);
    if (!found) return k_resp_err_invalid_resource_id;
    Resource& resource = *found;
    if (resource.backing.empty()) return k_resp_err_unspec;  // nothing to transfer from
    if (!inside(rect, resource.width, resource.height)) return k_resp_err_invalid_parameter;
    uint64_t stride = uint64_t{resource.width} * k_bytes_per_pixel;
    uint64_t row_bytes = uint64_t{rect.width} * k_bytes_per_pixel;
    // Row h comes from backing offset + h * stride (the guest's copy has the resource's layout).
    // Check the last row first so that a bad transfer changes nothing.
    if (rect.height > 0) {
        if (offset > resource.backing_bytes) return k_resp_err_invalid_parameter;
        uint64_t last = offset + (rect.height - 1) * stride;  // < 2^32 + 2^46: no overflow
        if (last > resource.backing_bytes || row_bytes > resource.backing_bytes - last)
            return k_resp_err_invalid_parameter;
    }
    for (uint32_t h = 0; h < rect.height; ++h) {
        uint8_t* destination =
            resource.pixels.data() + (uint64_t{rect.y} + h) * stride + uint64_t{rect.x} * k_bytes_per_pixel;
        read_backing(resource, offset + h * stride, destination, row_bytes);
    }
    return k_resp_ok_nodata;
}

uint32_t GpuCommands::attach_backing(std::span<const uint8_t> request) {
    if (request.size() < k_header_size + 8) return k_resp_err_unspec;
    uint32_t id = read_le<uint32_t>(request, 24);
    uint32_t count = read_le<uint32_t>(request, 28);
    Resource* found = find_resource(id);
    if (!found) return k_resp_err_invalid_resource_id;
    Resource& resource = *found;
    if (!resource.backing.empty()) return k_resp_err_unspec;  // detach first
    if (count == 0 || count > k_max_backing_entries) return k_resp_err_invalid_parameter;
    if (request.size() < k_header_size + 8 + uint64_t{count} * k_mem_entry_size) return k_resp_err_unspec;
    std::vector<BackingEntry> backing;
    backing.reserve(count);
    uint64_t total = 0;
    for (uint32_t i = 0; i < count; ++i) {
        size_t at = k_header_size + 8 + size_t{i} * k_mem_entry_size;
        uint64_t address = read_le<uint64_t>(request, at);
        uint32_t length = read_le<uint32_t>(request, at + 8);
        // Checked once here: the pointer stays valid as long as guest memory (the VM's life).
        const uint8_t* host = m_memory.host_pointer(address, length);
        if (!host) return k_resp_err_invalid_parameter;
        backing.push_back({host, length, total});
        total += length;  // at most 16384 * 4 GiB: no overflow
    }
    resource.backing = std::move(backing);
    resource.backing_bytes = total;
    return k_resp_ok_nodata;
}

uint32_t GpuCommands::detach_backing(std::span<const uint8_t> request) {
    if (request.size() < k_header_size + 8) return k_resp_err_unspec;
    uint32_t id = read_le<uint32_t>(request, 24);
    Resource* resource = find_resource(id);
    if (!resource) return k_resp_err_invalid_resource_id;
    if (resource->backing.empty()) return k_resp_err_unspec;
    resource->backing.clear();
    resource->backing_bytes = 0;
    return k_resp_ok_nodata;
}

bool GpuCommands::read_backing(const Resource& resource, uint64_t offset, uint8_t* out, uint64_t length) {
    if (offset > resource.backing_bytes || length > resource.backing_bytes - offset) return false;
    // The entry holding `offset`: the last one starting at or before it.
    auto entry = std::upper_bound(resource.backing.begin(), resource.backing.end(), offset,
                                  [](uint64_t value, const BackingEntry& e) { return value < e.offset; });
    if (entry == resource.backing.begin()) return false;
    --entry;
    while (length > 0 && entry != resource.backing.end()) {
        uint64_t within = offset - entry->offset;
        if (within < entry->length) {
            uint64_t take = std::min(length, entry->length - within);
            std::memcpy(out, entry->host + within, take);
            out += take;
            offset += take;
            length -= take;
        }
        ++entry;
    }
    return length == 0;
}

void GpuCommands::show(const Resource& resource, uint32_t x, uint32_t y, uint32_t width, uint32_t height) {
    display::Rect target{x - m_scanout_x, y - m_scanout_y, width, height};
    size_t stride = size_t{resource.width} * k_bytes_per_pixel;
    size_t start = size_t{y} * stride + size_t{x} * k_bytes_per_pixel;
    if (resource.format == k_format_b8g8r8x8 || resource.format == k_format_b8g8r8a8) {
        m_display->update(target, std::span(resource.pixels).subspan(start), stride);
        return;
    }
    // Other byte orders become the framebuffer's B, G, R, X.
    Channels c = channels(resource.format);
    size_t row_bytes = size_t{width} * k_bytes_per_pixel;
    m_convert.resize(row_bytes * height);
    for (uint32_t row = 0; row < height; ++row) {
        const uint8_t* from = resource.pixels.data() + start + row * stride;
        uint8_t* to = m_convert.data() + row * row_bytes;
        for (uint32_t column = 0; column < width; ++column, from += 4, to += 4) {
            to[0] = from[c.blue];
            to[1] = from[c.green];
            to[2] = from[c.red];
            to[3] = 0;
        }
    }
    m_display->update(target, m_convert, row_bytes);
}

}  // namespace corral::vmm::virtio::gpu
