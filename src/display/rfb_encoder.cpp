#include "display/rfb_encoder.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "display/rfb_messages.h"

namespace corral::display::rfb {

namespace {

// Tight rectangles are cut to at most this many pixels and this width: TightVNC's own limits
// (rfbTightMaxRectSize, rfbTightMaxRectWidth), which older decoders size their buffers by.
constexpr std::uint32_t k_tight_max_pixels = 65536;
constexpr std::uint32_t k_tight_max_width = 2048;
// Tight sends data shorter than this uncompressed (its spec).
constexpr std::size_t k_tight_min_to_compress = 12;

}  // namespace

struct RectEncoder::Stream {
    z_stream z{};
    bool ready = false;
    ~Stream() {
        if (ready) deflateEnd(&z);
    }
};

void put_u8(std::vector<std::uint8_t>& out, std::uint8_t value) { out.push_back(value); }

void put_u16(std::vector<std::uint8_t>& out, std::uint16_t value) {
    out.push_back(static_cast<std::uint8_t>(value >> 8));
    out.push_back(static_cast<std::uint8_t>(value));
}

void put_u32(std::vector<std::uint8_t>& out, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(value >> shift));
}

void put_tight_length(std::vector<std::uint8_t>& out, std::size_t length) {
    out.push_back(static_cast<std::uint8_t>((length & 0x7f) | (length > 0x7f ? 0x80 : 0)));
    if (length > 0x7f) {
        out.push_back(static_cast<std::uint8_t>(((length >> 7) & 0x7f) | (length > 0x3fff ? 0x80 : 0)));
        if (length > 0x3fff) out.push_back(static_cast<std::uint8_t>((length >> 14) & 0xff));
    }
}

RectEncoder::RectEncoder() = default;
RectEncoder::~RectEncoder() = default;

void RectEncoder::put_header(std::vector<std::uint8_t>& out, Rect rect, std::int32_t encoding) {
    put_u16(out, static_cast<std::uint16_t>(rect.x));
    put_u16(out, static_cast<std::uint16_t>(rect.y));
    put_u16(out, static_cast<std::uint16_t>(rect.width));
    put_u16(out, static_cast<std::uint16_t>(rect.height));
    put_u32(out, static_cast<std::uint32_t>(encoding));
}

void RectEncoder::deflate_into(Stream& stream, std::span<const std::uint8_t> data, std::vector<std::uint8_t>& out) {
    if (!stream.ready) {
        // A failure here is memory exhaustion; the stream then stays unready and sends nothing
        // decodable, which the caller cannot do better about than the viewer noticing.
        if (deflateInit(&stream.z, std::clamp(m_level, 0, 9)) != Z_OK) return;
        stream.ready = true;
    }
    const std::size_t start = out.size();
    out.resize(start + deflateBound(&stream.z, data.size()) + 64);
    stream.z.next_in = const_cast<Bytef*>(data.data());
    stream.z.avail_in = static_cast<uInt>(data.size());
    stream.z.next_out = out.data() + start;
    stream.z.avail_out = static_cast<uInt>(out.size() - start);
    // Z_SYNC_FLUSH: the viewer decodes this rectangle now; the dictionary carries on to the next.
    while (true) {
        const int rc = deflate(&stream.z, Z_SYNC_FLUSH);
        if (rc != Z_OK && rc != Z_BUF_ERROR) break;
        if (stream.z.avail_out != 0) break;
        const std::size_t used = out.size() - start;
        out.resize(out.size() + 4096);
        stream.z.next_out = out.data() + start + used;
        stream.z.avail_out = 4096;
    }
    out.resize(out.size() - stream.z.avail_out);
}

std::size_t RectEncoder::encode(Rect rect, std::span<const std::uint8_t> pixels, Encoding encoding,
                                const PixelFormat& format, std::vector<std::uint8_t>& out) {
    const std::size_t stride = std::size_t{rect.width} * 4;
    switch (encoding) {
        case Encoding::Raw:
            put_header(out, rect, k_encoding_raw);
            convert_pixels(pixels, format, out);
            return 1;
        case Encoding::Zlib: {
            if (!m_zlib) m_zlib = std::make_unique<Stream>();
            m_scratch.clear();
            convert_pixels(pixels, format, m_scratch);
            put_header(out, rect, k_encoding_zlib);
            const std::size_t length_at = out.size();
            put_u32(out, 0);
            deflate_into(*m_zlib, m_scratch, out);
            const std::uint32_t length = static_cast<std::uint32_t>(out.size() - length_at - 4);
            for (int i = 0; i < 4; ++i) out[length_at + i] = static_cast<std::uint8_t>(length >> (24 - 8 * i));
            return 1;
        }
        case Encoding::Tight: {
            const std::uint32_t width = std::min(rect.width, k_tight_max_width);
            const std::uint32_t rows = std::max<std::uint32_t>(1, k_tight_max_pixels / width);
            std::size_t count = 0;
            for (std::uint32_t y = 0; y < rect.height; y += rows) {
                for (std::uint32_t x = 0; x < rect.width; x += width) {
                    const Rect piece{rect.x + x, rect.y + y, std::min(width, rect.width - x),
                                     std::min(rows, rect.height - y)};
                    encode_tight(piece, pixels.subspan(std::size_t{y} * stride + std::size_t{x} * 4), stride, format,
                                 out);
                    ++count;
                }
            }
            return count;
        }
    }
    return 0;
}

// `pixels` starts at the piece's top-left pixel; rows are `stride` bytes apart. Like TightVNC's
// encoder: one colour is a fill, two a 1-bit palette (stream 1), up to 256 an 8-bit palette
// (stream 2), more the copy filter (stream 0); each stream its own zlib dictionary.
void RectEncoder::encode_tight(Rect rect, std::span<const std::uint8_t> pixels, std::size_t stride,
                               const PixelFormat& format, std::vector<std::uint8_t>& out) {
    put_header(out, rect, k_encoding_tight);
    const std::size_t row_bytes = std::size_t{rect.width} * 4;
    const std::size_t count = std::size_t{rect.width} * rect.height;
    m_scratch.clear();
    for (std::uint32_t row = 0; row < rect.height; ++row) {
        const std::uint8_t* src = pixels.data() + row * stride;
        m_scratch.insert(m_scratch.end(), src, src + row_bytes);
    }
    // The palette: colours (the X byte masked off) in order of appearance, and each pixel's index.
    // An open-addressing table of 1024 slots holds up to 256 colours.
    constexpr std::size_t k_slots = 1024;
    std::uint32_t keys[k_slots];
    std::uint8_t values[k_slots];
    std::fill(std::begin(keys), std::end(keys), 0xffffffffu);
    m_palette.clear();
    m_indices.resize(count);
    std::uint32_t previous = 0xffffffffu;
    std::uint8_t previous_index = 0;
    for (std::size_t i = 0; i < count && m_palette.size() <= 256; ++i) {
        std::uint32_t colour = 0;
        std::memcpy(&colour, &m_scratch[i * 4], 4);
        colour &= 0x00ffffff;
        if (colour != previous) {
            std::size_t slot = (colour * 2654435761u) >> 22;  // top 10 bits: 0..1023
            while (keys[slot] != colour && keys[slot] != 0xffffffffu) slot = (slot + 1) % k_slots;
            if (keys[slot] != colour) {
                if (m_palette.size() == 256) {
                    m_palette.push_back(colour);  // 257 colours: too many, stop
                    break;
                }
                keys[slot] = colour;
                values[slot] = static_cast<std::uint8_t>(m_palette.size());
                m_palette.push_back(colour);
            }
            previous = colour;
            previous_index = values[slot];
        }
        m_indices[i] = previous_index;
    }
    // Converts BGRX pixels to what Tight sends: 3-byte RGB for 24-bit true colour, else the
    // viewer's format.
    auto put_pixels = [&](std::span<const std::uint8_t> bgrx, std::vector<std::uint8_t>& into) {
        if (format.is_tight_24bit()) {
            convert_pixels_rgb24(bgrx, into);
        } else {
            convert_pixels(bgrx, format, into);
        }
    };
    std::vector<std::uint8_t> data;
    int stream = 0;
    if (m_palette.size() == 1) {
        put_u8(out, 0x80);  // fill compression
        put_pixels(std::span<const std::uint8_t>(m_scratch).first(4), out);
        return;
    }
    if (m_palette.size() <= 256) {
        stream = m_palette.size() == 2 ? 1 : 2;
        put_u8(out, static_cast<std::uint8_t>(0x40 | stream << 4));  // explicit filter on this stream
        put_u8(out, 1);                                                // the palette filter
        put_u8(out, static_cast<std::uint8_t>(m_palette.size() - 1));
        std::vector<std::uint8_t> colours(m_palette.size() * 4);
        std::memcpy(colours.data(), m_palette.data(), colours.size());
        put_pixels(colours, out);
        if (stream == 1) {
            // One bit per pixel, most significant first, each row padded to a byte.
            const std::size_t row_size = (rect.width + 7) / 8;
            data.assign(row_size * rect.height, 0);
            for (std::uint32_t row = 0; row < rect.height; ++row) {
                for (std::uint32_t column = 0; column < rect.width; ++column) {
                    if (m_indices[std::size_t{row} * rect.width + column] != 0) {
                        data[row * row_size + column / 8] |= static_cast<std::uint8_t>(0x80 >> (column % 8));
                    }
                }
            }
        } else {
            data = m_indices;
        }
    } else {
        put_u8(out, 0x00);  // basic compression, stream 0, the copy filter
        put_pixels(m_scratch, data);
    }
    if (data.size() < k_tight_min_to_compress) {
        out.insert(out.end(), data.begin(), data.end());
        return;
    }
    if (!m_tight[stream]) m_tight[stream] = std::make_unique<Stream>();
    std::vector<std::uint8_t> compressed;
    deflate_into(*m_tight[stream], data, compressed);
    put_tight_length(out, compressed.size());
    out.insert(out.end(), compressed.begin(), compressed.end());
}

}  // namespace corral::display::rfb
