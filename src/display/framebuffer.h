#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <vector>

namespace corral::display {

/// A rectangle of the screen, in pixels.
struct Rect {
    std::uint32_t x = 0;
    std::uint32_t y = 0;
    std::uint32_t width = 0;
    std::uint32_t height = 0;
};

/// The guest's screen: what the display device scans out, and what VNC viewers and screenshots
/// read. Pixels are 32 bits, bytes B, G, R, X in memory: virtio-gpu's B8G8R8X8_UNORM, which is
/// also RFB's 32 bpp little-endian true colour (red shift 16, green 8, blue 0), so neither side
/// converts in the common case.
///
/// Damage is tracked per tile (k_tile x k_tile pixels) as the serial number of the last change:
/// each reader remembers the serial it has seen and asks for what changed since, so any number
/// of viewers follow one framebuffer without the writer knowing about them.
///
/// Thread-safe: the device writes from its thread, viewers and screenshots read from theirs.
class Framebuffer {
public:
    static constexpr std::uint32_t k_tile = 64;
    /// The largest screen accepted (a guest asks for the size; this bounds the memory it costs).
    static constexpr std::uint32_t k_max_width = 3840;
    static constexpr std::uint32_t k_max_height = 2160;

    Framebuffer(std::uint32_t width, std::uint32_t height);

    std::uint32_t width() const;
    std::uint32_t height() const;
    /// Counts resizes: a reader that saw another generation must resend the whole screen.
    std::uint64_t generation() const;
    /// The serial of the latest change (0 before any).
    std::uint64_t serial() const;

    /// Changes the size (the guest set another mode; sizes are clamped to 1..k_max_*). The content
    /// is cleared to black and the whole screen counts as changed.
    void resize(std::uint32_t width, std::uint32_t height);
    /// Copies `rect` (clipped to the screen) from `source`, whose rows are `source_stride` bytes
    /// apart and whose first byte is the rectangle's top-left pixel, and marks it changed.
    /// Returns false (and changes nothing) when `source` is too short for the rectangle.
    bool update(Rect rect, std::span<const std::uint8_t> source, std::size_t source_stride);

    /// The rectangles (tile-aligned, clipped to the screen) changed after `since`, with the
    /// current serial to pass next time. A reader of another generation gets the whole screen.
    struct Changes {
        std::vector<Rect> rects;
        std::uint64_t serial = 0;
        std::uint64_t generation = 0;
        std::uint32_t width = 0;
        std::uint32_t height = 0;
    };
    Changes changes_since(std::uint64_t since, std::uint64_t generation) const;

    /// Copies `rect` (which must lie inside the screen) into `out`, rows packed (width * 4 bytes).
    void read(Rect rect, std::vector<std::uint8_t>& out) const;

    /// Called (from the writer's thread, without the lock held) after every resize and update,
    /// e.g. to signal an eventfd that wakes the VNC server. One listener; set it before writing.
    void set_change_listener(std::function<void()> listener);

private:
    void mark_locked(Rect rect);

    mutable std::mutex m_mutex;
    std::uint32_t m_width;
    std::uint32_t m_height;
    std::uint64_t m_generation = 1;
    std::uint64_t m_serial = 0;
    std::vector<std::uint8_t> m_pixels;
    std::vector<std::uint64_t> m_tile_serials;
    std::function<void()> m_listener;
};

}  // namespace corral::display
