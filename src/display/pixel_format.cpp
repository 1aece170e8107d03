#include "display/pixel_format.h"

#include <fmt/format.h>

namespace corral::display {

namespace {

std::uint16_t read_u16(std::span<const std::uint8_t, 16> bytes, std::size_t at) {
    return static_cast<std::uint16_t>(bytes[at] << 8 | bytes[at + 1]);
}

// `max` is 2^n - 1 (n >= 1): a mask of n bits.
bool is_mask(std::uint16_t max) { return max != 0 && (max & (max + 1)) == 0; }

int bits_of(std::uint16_t max) {
    int bits = 0;
    while (max != 0) {
        ++bits;
        max >>= 1;
    }
    return bits;
}

// An 8-bit component scaled to 0..max, rounded.
std::uint32_t scale(std::uint8_t value, std::uint16_t max) {
    if (max == 255) return value;
    return (std::uint32_t{value} * max + 127) / 255;
}

}  // namespace

std::array<std::uint8_t, 16> PixelFormat::encode() const {
    return {bits_per_pixel,
            depth,
            static_cast<std::uint8_t>(big_endian ? 1 : 0),
            static_cast<std::uint8_t>(true_colour ? 1 : 0),
            static_cast<std::uint8_t>(red_max >> 8),
            static_cast<std::uint8_t>(red_max),
            static_cast<std::uint8_t>(green_max >> 8),
            static_cast<std::uint8_t>(green_max),
            static_cast<std::uint8_t>(blue_max >> 8),
            static_cast<std::uint8_t>(blue_max),
            red_shift,
            green_shift,
            blue_shift,
            0,
            0,
            0};
}

PixelFormat PixelFormat::decode(std::span<const std::uint8_t, 16> bytes) {
    PixelFormat format;
    format.bits_per_pixel = bytes[0];
    format.depth = bytes[1];
    format.big_endian = bytes[2] != 0;
    format.true_colour = bytes[3] != 0;
    format.red_max = read_u16(bytes, 4);
    format.green_max = read_u16(bytes, 6);
    format.blue_max = read_u16(bytes, 8);
    format.red_shift = bytes[10];
    format.green_shift = bytes[11];
    format.blue_shift = bytes[12];
    return format;
}

Result<void> PixelFormat::validate() const {
    if (!true_colour) {
        return fail(ErrorKind::Invalid, "pixel format: colour-map formats are not supported (only true colour)");
    }
    if (bits_per_pixel != 8 && bits_per_pixel != 16 && bits_per_pixel != 32) {
        return fail(ErrorKind::Invalid,
                    fmt::format("pixel format: {} bits per pixel is not supported (8, 16 or 32)", bits_per_pixel));
    }
    const std::uint16_t maxes[] = {red_max, green_max, blue_max};
    const std::uint8_t shifts[] = {red_shift, green_shift, blue_shift};
    for (int i = 0; i < 3; ++i) {
        if (!is_mask(maxes[i]) || shifts[i] + bits_of(maxes[i]) > bits_per_pixel) {
            return fail(ErrorKind::Invalid,
                        fmt::format("pixel format: a colour maximum ({}) at shift {} does not fit {} bits per pixel "
                                    "(maximums must be 2^n-1)",
                                    maxes[i], shifts[i], bits_per_pixel));
        }
    }
    return {};
}

bool PixelFormat::is_native() const {
    return bits_per_pixel == 32 && !big_endian && true_colour && red_max == 255 && green_max == 255 &&
           blue_max == 255 && red_shift == 16 && green_shift == 8 && blue_shift == 0;
}

bool PixelFormat::is_tight_24bit() const {
    return bits_per_pixel == 32 && depth == 24 && true_colour && red_max == 255 && green_max == 255 &&
           blue_max == 255;
}

void convert_pixels(std::span<const std::uint8_t> pixels, const PixelFormat& format, std::vector<std::uint8_t>& out) {
    if (format.is_native()) {
        out.insert(out.end(), pixels.begin(), pixels.end());
        return;
    }
    const std::size_t count = pixels.size() / 4;
    const std::size_t start = out.size();
    if (format.bits_per_pixel == 32 && format.red_max == 255 && format.green_max == 255 && format.blue_max == 255 &&
        format.red_shift % 8 == 0 && format.green_shift % 8 == 0 && format.blue_shift % 8 == 0) {
        // 8-bit components on byte boundaries (noVNC's R, G, B, X): place bytes, no arithmetic.
        auto at = [&](std::uint8_t shift) { return format.big_endian ? 3 - shift / 8 : shift / 8; };
        const std::size_t red = at(format.red_shift), green = at(format.green_shift), blue = at(format.blue_shift);
        out.resize(start + count * 4, 0);
        std::uint8_t* dest = out.data() + start;
        for (std::size_t i = 0; i < count; ++i, dest += 4) {
            dest[red] = pixels[i * 4 + 2];
            dest[green] = pixels[i * 4 + 1];
            dest[blue] = pixels[i * 4];
        }
        return;
    }
    const std::size_t bytes = format.bytes_per_pixel();
    out.resize(start + count * bytes);
    std::uint8_t* dest = out.data() + start;
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint8_t* pixel = &pixels[i * 4];
        const std::uint32_t value = scale(pixel[2], format.red_max) << format.red_shift |
                                    scale(pixel[1], format.green_max) << format.green_shift |
                                    scale(pixel[0], format.blue_max) << format.blue_shift;
        for (std::size_t b = 0; b < bytes; ++b) {
            // Byte b of the pixel in memory order: big-endian puts the high byte first.
            const std::size_t shift = format.big_endian ? (bytes - 1 - b) * 8 : b * 8;
            dest[b] = static_cast<std::uint8_t>(value >> shift);
        }
        dest += bytes;
    }
}

void convert_pixels_rgb24(std::span<const std::uint8_t> pixels, std::vector<std::uint8_t>& out) {
    const std::size_t count = pixels.size() / 4;
    const std::size_t start = out.size();
    out.resize(start + count * 3);
    std::uint8_t* dest = out.data() + start;
    for (std::size_t i = 0; i < count; ++i) {
        dest[0] = pixels[i * 4 + 2];
        dest[1] = pixels[i * 4 + 1];
        dest[2] = pixels[i * 4];
        dest += 3;
    }
}

}  // namespace corral::display
