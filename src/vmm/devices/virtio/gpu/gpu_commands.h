#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "display/framebuffer.h"
#include "vmm/devices/virtio/queue.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm::virtio::gpu {

/// The 2D command set of virtio-gpu (virtio 1.2 §5.7.6.8) with one scanout: host-side resources
/// (pixel copies of the guest's framebuffers), their backing in guest pages, and the scanout that
/// is shown in a display::Framebuffer on RESOURCE_FLUSH.
///
/// The guest is hostile: every command's length is checked before a field is read, resource ids
/// are looked up, rectangles are checked against the resource in 64-bit arithmetic, backing
/// entries are resolved through GuestMemory::host_pointer() when attached, transfers are checked
/// against the backing's size, and host memory for resources is bounded per VM
/// (k_max_host_bytes). A bad command gets a VIRTIO_GPU_RESP_ERR_* answer and changes nothing.
///
/// Not thread-safe: used on the device's event loop thread (the Framebuffer is thread-safe).
class GpuCommands {
public:
    /// Host memory all resources of a VM may take together (QEMU's default max_hostmem too).
    static constexpr uint64_t k_max_host_bytes = 256ull << 20;
    static constexpr uint32_t k_max_resources = 1024;
    static constexpr uint32_t k_max_resource_side = 16384;
    static constexpr uint32_t k_max_backing_entries = 16384;
    /// The longest request read: ATTACH_BACKING with k_max_backing_entries entries.
    static constexpr size_t k_max_request_bytes = 32 + 16 * size_t{k_max_backing_entries};
    static constexpr size_t k_max_response_bytes = 408;  // display info, the longest answer

    /// `display` starts at the preferred size, which GET_DISPLAY_INFO reports.
    GpuCommands(const GuestMemory& memory, std::shared_ptr<display::Framebuffer> display);

    /// Executes one control command (`request`: the chain's readable bytes) and writes its
    /// answer into `response` (k_max_response_bytes long); returns the answer's length.
    size_t execute(std::span<const uint8_t> request, std::span<uint8_t> response);
    /// A cursorq command: accepted and ignored (VNC viewers draw their own pointer; the text
    /// console draws its cursor into the framebuffer).
    void execute_cursor(std::span<const uint8_t> request);
    /// Forgets every resource and disables the scanout (device reset).
    void reset();

    uint64_t host_bytes() const { return m_host_bytes; }
    size_t resource_count() const { return m_resources.size(); }

private:
    struct BackingEntry {
        const uint8_t* host;
        uint64_t length;
        uint64_t offset;  // of this entry within the backing
    };
    struct Resource {
        uint32_t format;
        uint32_t width;
        uint32_t height;
        std::vector<uint8_t> pixels;  // width * height * 4, in `format`
        std::vector<BackingEntry> backing;
        uint64_t backing_bytes = 0;
    };

    /// The guest's resource `id`, or nullptr when it never made one by that id (or unref'd it).
    Resource* find_resource(uint32_t id);
    uint32_t create_2d(std::span<const uint8_t> request);
    uint32_t unref(std::span<const uint8_t> request);
    uint32_t set_scanout(std::span<const uint8_t> request);
    uint32_t flush(std::span<const uint8_t> request);
    uint32_t transfer_to_host(std::span<const uint8_t> request);
    uint32_t attach_backing(std::span<const uint8_t> request);
    uint32_t detach_backing(std::span<const uint8_t> request);
    /// Copies `length` bytes at `offset` of the resource's backing to `out`; false when out of range.
    static bool read_backing(const Resource& resource, uint64_t offset, uint8_t* out, uint64_t length);
    /// Shows `rect` of the scanout's resource (resource coordinates) in the framebuffer.
    void show(const Resource& resource, uint32_t x, uint32_t y, uint32_t width, uint32_t height);

    const GuestMemory& m_memory;
    std::shared_ptr<display::Framebuffer> m_display;
    uint32_t m_preferred_width;
    uint32_t m_preferred_height;
    std::map<uint32_t, Resource> m_resources;
    uint64_t m_host_bytes = 0;
    // The scanout: resource 0 when disabled; its rectangle within the resource.
    uint32_t m_scanout_resource = 0;
    uint32_t m_scanout_x = 0, m_scanout_y = 0, m_scanout_width = 0, m_scanout_height = 0;
    std::vector<uint8_t> m_convert;  // BGRX rows for formats the framebuffer does not share
};

}  // namespace corral::vmm::virtio::gpu
