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

// `pixels` starts at the piece's top-left pixel; rows are `stride` bytes apart.
void RectEncoder::encode_tight(Rect rect, std::span<const std::uint8_t> pixels, std::size_t stride,
                               const PixelFormat& format, std::vector<std::uint8_t>& out) {
    put_header(out, rect, k_encoding_tight);
    const std::size_t row_bytes = std::size_t{rect.width} * 4;
    // Gather the piece's rows and see whether it is one colour (a fill: 1 pixel instead of all).
    m_scratch.clear();
    bool solid = true;
    std::uint32_t first = 0;
    std::memcpy(&first, pixels.data(), 4);
    for (std::uint32_t row = 0; row < rect.height; ++row) {
        const std::uint8_t* src = pixels.data() + row * stride;
        for (std::size_t i = 0; solid && i < row_bytes; i += 4) {
            std::uint32_t value = 0;
            std::memcpy(&value, src + i, 4);
            // The X byte is padding: compare colours only.
            solid = ((value ^ first) & 0x00ffffff) == 0;
        }
        m_scratch.insert(m_scratch.end(), src, src + row_bytes);
    }
    std::vector<std::uint8_t> converted;
    const std::span<const std::uint8_t> source = solid ? std::span<const std::uint8_t>(m_scratch).first(4)
                                                       : std::span<const std::uint8_t>(m_scratch);
    if (format.is_tight_24bit()) {
        convert_pixels_rgb24(source, converted);
    } else {
        convert_pixels(source, format, converted);
    }
    if (solid) {
        put_u8(out, 0x80);  // fill compression
        out.insert(out.end(), converted.begin(), converted.end());
        return;
    }
    // Basic compression, stream 0, no explicit filter (copy filter).
    put_u8(out, 0x00);
    if (converted.size() < k_tight_min_to_compress) {
        out.insert(out.end(), converted.begin(), converted.end());
        return;
    }
    if (!m_tight) m_tight = std::make_unique<Stream>();
    std::vector<std::uint8_t> compressed;
    deflate_into(*m_tight, converted, compressed);
    put_tight_length(out, compressed.size());
    out.insert(out.end(), compressed.begin(), compressed.end());
}

}  // namespace corral::display::rfb
