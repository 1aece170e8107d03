#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "display/pixel_format.h"

namespace corral::display::rfb {

// Encoding numbers (RFC 6143 §7.7 and the RFB community registry).
inline constexpr std::int32_t k_encoding_raw = 0;
inline constexpr std::int32_t k_encoding_zlib = 6;
inline constexpr std::int32_t k_encoding_tight = 7;
inline constexpr std::int32_t k_encoding_desktop_size = -223;
inline constexpr std::int32_t k_encoding_qemu_extended_key = -258;
inline constexpr std::int32_t k_encoding_extended_desktop_size = -308;
/// -256 .. -247: the compression level 0..9 the viewer prefers.
inline constexpr std::int32_t k_encoding_compress_level_0 = -256;
inline constexpr std::int32_t k_encoding_compress_level_9 = -247;

/// The most encodings one SetEncodings may list (the u16 count allows 65535: 256 KiB).
inline constexpr std::size_t k_max_encodings = 1024;

/// The protocol version a viewer answered (RFC 6143 §7.1.1): 3.3, 3.7 or 3.8 (newer minors
/// count as 3.8, unknown 3.x ones as 3.3 as the RFC says); nullopt when `bytes` (12) is not an
/// RFB version string.
std::optional<int> parse_protocol_version(std::span<const std::uint8_t, 12> bytes);

struct SetPixelFormat {
    PixelFormat format;
};
struct SetEncodings {
    std::vector<std::int32_t> encodings;
};
struct UpdateRequest {
    bool incremental = false;
    std::uint16_t x = 0, y = 0, width = 0, height = 0;
};
struct KeyEvent {
    bool down = false;
    std::uint32_t keysym = 0;
};
struct PointerEvent {
    std::uint8_t buttons = 0;
    std::uint16_t x = 0, y = 0;
};
/// ClientCutText's header: `length` bytes of text follow, which the server skips.
struct CutText {
    std::uint32_t length = 0;
};
/// QEMU's extended key event (message 255, subtype 0): the keysym and the XT scancode.
struct ExtendedKeyEvent {
    bool down = false;
    std::uint32_t keysym = 0;
    std::uint32_t scancode = 0;
};
/// SetDesktopSize (251, ExtendedDesktopSize); the screens are read and dropped.
struct SetDesktopSize {
    std::uint16_t width = 0, height = 0;
};

using ClientMessage = std::variant<SetPixelFormat, SetEncodings, UpdateRequest, KeyEvent, PointerEvent, CutText,
                                   ExtendedKeyEvent, SetDesktopSize>;

/// One client-to-server message decoded from the front of a buffer.
struct ParseResult {
    enum class Status {
        NeedMore,  ///< the buffer holds only part of the message: read more
        Complete,  ///< `message` decoded from the first `consumed` bytes
        Invalid,   ///< not a message this server knows (`error` says why): disconnect
    };
    Status status = Status::NeedMore;
    std::size_t consumed = 0;
    ClientMessage message;
    std::string error;
};

/// Decodes the message at the front of `buffer` (RFC 6143 §7.5). Never reads past the buffer;
/// every length the viewer sends is bounded (SetEncodings by k_max_encodings; cut text is left
/// to the caller to skip).
ParseResult parse_client_message(std::span<const std::uint8_t> buffer);

}  // namespace corral::display::rfb
