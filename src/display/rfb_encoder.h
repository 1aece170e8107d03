#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "display/framebuffer.h"
#include "display/pixel_format.h"

namespace corral::display::rfb {

/// The pixel encodings the server sends.
enum class Encoding { Raw, Zlib, Tight };

/// Encodes framebuffer rectangles for one viewer: the zlib streams live as long as the viewer's
/// connection, since the Zlib and Tight decoders keep theirs (RFC 6143 §7.7.3, Tight's stream 0).
class RectEncoder {
public:
    RectEncoder();
    ~RectEncoder();
    RectEncoder(const RectEncoder&) = delete;
    RectEncoder& operator=(const RectEncoder&) = delete;

    /// The zlib level (0..9) for streams not created yet (the viewer's CompressLevel pseudo-encoding).
    void set_compression_level(int level) { m_level = level; }

    /// Appends rectangle headers and data for `rect`, whose pixels (B, G, R, X, rows packed) are
    /// `pixels`, to `out`; returns how many rectangles it wrote (Tight splits large ones into
    /// pieces its decoders accept).
    std::size_t encode(Rect rect, std::span<const std::uint8_t> pixels, Encoding encoding, const PixelFormat& format,
                       std::vector<std::uint8_t>& out);

    /// Appends an RFB rectangle header.
    static void put_header(std::vector<std::uint8_t>& out, Rect rect, std::int32_t encoding);

private:
    struct Stream;
    void encode_tight(Rect rect, std::span<const std::uint8_t> pixels, std::size_t stride, const PixelFormat& format,
                      std::vector<std::uint8_t>& out);
    void deflate_into(Stream& stream, std::span<const std::uint8_t> data, std::vector<std::uint8_t>& out);

    int m_level = 6;
    std::unique_ptr<Stream> m_zlib;
    std::unique_ptr<Stream> m_tight;
    std::vector<std::uint8_t> m_scratch;
};

/// Writes Tight's compact length (1 to 3 bytes, 7 bits each).
void put_tight_length(std::vector<std::uint8_t>& out, std::size_t length);

/// Big-endian helpers for building messages.
void put_u8(std::vector<std::uint8_t>& out, std::uint8_t value);
void put_u16(std::vector<std::uint8_t>& out, std::uint16_t value);
void put_u32(std::vector<std::uint8_t>& out, std::uint32_t value);

}  // namespace corral::display::rfb
