#include "display/png.h"

#include <zlib.h>

#include <fmt/format.h>

namespace corral::display {

namespace {

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

// A chunk: length, type, data, and the CRC-32 of type and data (PNG spec §5.3).
void put_chunk(std::vector<std::uint8_t>& out, const char (&type)[5], const std::vector<std::uint8_t>& data) {
    put_u32(out, static_cast<std::uint32_t>(data.size()));
    const std::size_t type_at = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data.begin(), data.end());
    const uLong crc = crc32(0, out.data() + type_at, static_cast<uInt>(4 + data.size()));
    put_u32(out, static_cast<std::uint32_t>(crc));
}

}  // namespace

Result<std::vector<std::uint8_t>> encode_png_bgrx(std::uint32_t width, std::uint32_t height,
                                                  const std::vector<std::uint8_t>& pixels) {
    if (width == 0 || height == 0 || pixels.size() != std::size_t{width} * height * 4) {
        return fail(ErrorKind::Invalid, fmt::format("PNG: {} bytes of pixels do not make a {}x{} BGRX image",
                                                    pixels.size(), width, height));
    }
    // Scanlines: filter type 0 (None) then R, G, B per pixel.
    std::vector<std::uint8_t> raw;
    raw.reserve(std::size_t{height} * (1 + std::size_t{width} * 3));
    for (std::uint32_t y = 0; y < height; ++y) {
        raw.push_back(0);
        const std::uint8_t* row = &pixels[std::size_t{y} * width * 4];
        for (std::uint32_t x = 0; x < width; ++x) {
            raw.push_back(row[x * 4 + 2]);
            raw.push_back(row[x * 4 + 1]);
            raw.push_back(row[x * 4]);
        }
    }
    std::vector<std::uint8_t> compressed(compressBound(static_cast<uLong>(raw.size())));
    uLongf compressed_size = static_cast<uLongf>(compressed.size());
    if (compress2(compressed.data(), &compressed_size, raw.data(), static_cast<uLong>(raw.size()), 6) != Z_OK) {
        return fail("PNG: zlib could not compress the image");
    }
    compressed.resize(compressed_size);

    std::vector<std::uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    std::vector<std::uint8_t> header;
    put_u32(header, width);
    put_u32(header, height);
    header.insert(header.end(), {8, 2, 0, 0, 0});  // 8 bits, RGB, deflate, adaptive filters, no interlace
    put_chunk(png, "IHDR", header);
    put_chunk(png, "IDAT", compressed);
    put_chunk(png, "IEND", {});
    return png;
}

Result<std::vector<std::uint8_t>> encode_png(const Framebuffer& framebuffer) {
    // One read under the framebuffer's lock: size and pixels agree even while the guest resizes.
    std::vector<std::uint8_t> pixels;
    const Framebuffer::Changes screen = framebuffer.changes_since(0, 0);
    framebuffer.read({0, 0, screen.width, screen.height}, pixels);
    if (pixels.size() != std::size_t{screen.width} * screen.height * 4) {
        // Resized between the two calls: read again at the new size.
        const std::uint32_t width = framebuffer.width();
        const std::uint32_t height = framebuffer.height();
        framebuffer.read({0, 0, width, height}, pixels);
        return encode_png_bgrx(width, height, pixels);
    }
    return encode_png_bgrx(screen.width, screen.height, pixels);
}

}  // namespace corral::display
