#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/result.h"

namespace corral::display {

/// An RFB pixel format (RFC 6143 §7.4): how a viewer wants pixels on the wire.
struct PixelFormat {
    std::uint8_t bits_per_pixel = 32;
    std::uint8_t depth = 24;
    bool big_endian = false;
    bool true_colour = true;
    std::uint16_t red_max = 255;
    std::uint16_t green_max = 255;
    std::uint16_t blue_max = 255;
    std::uint8_t red_shift = 16;
    std::uint8_t green_shift = 8;
    std::uint8_t blue_shift = 0;

    /// The framebuffer's own format (B, G, R, X bytes: 32 bpp little-endian, red at bit 16).
    static PixelFormat native() { return {}; }
    /// The 16 bytes of the format on the wire (padding included).
    std::array<std::uint8_t, 16> encode() const;
    static PixelFormat decode(std::span<const std::uint8_t, 16> bytes);

    /// Whether the server can convert to this format: true colour, 8, 16 or 32 bits per pixel,
    /// each component's maximum a nonzero 2^n-1 that fits at its shift. Colour maps are refused.
    Result<void> validate() const;
    std::size_t bytes_per_pixel() const { return bits_per_pixel / 8; }
    /// Same pixels as the framebuffer: rows are copied as they are.
    bool is_native() const;
    /// Tight sends such pixels as 3 bytes R, G, B ("TPIXEL", 32 bpp with depth 24 and 8-bit
    /// components).
    bool is_tight_24bit() const;

    bool operator==(const PixelFormat&) const = default;
};

/// Appends `pixels` (B, G, R, X bytes each) converted to `format` (which passed validate()).
void convert_pixels(std::span<const std::uint8_t> pixels, const PixelFormat& format, std::vector<std::uint8_t>& out);

/// Appends `pixels` as Tight's 3-byte R, G, B pixels.
void convert_pixels_rgb24(std::span<const std::uint8_t> pixels, std::vector<std::uint8_t>& out);

}  // namespace corral::display
