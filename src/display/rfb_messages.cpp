#include "display/rfb_messages.h"

#include <fmt/format.h>

namespace corral::display::rfb {

namespace {

std::uint16_t u16(std::span<const std::uint8_t> b, std::size_t at) {
    return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]);
}

std::uint32_t u32(std::span<const std::uint8_t> b, std::size_t at) {
    return std::uint32_t{b[at]} << 24 | std::uint32_t{b[at + 1]} << 16 | std::uint32_t{b[at + 2]} << 8 | b[at + 3];
}

ParseResult need_more() { return {}; }

ParseResult invalid(std::string error) {
    ParseResult result;
    result.status = ParseResult::Status::Invalid;
    result.error = std::move(error);
    return result;
}

ParseResult complete(std::size_t consumed, ClientMessage message) {
    ParseResult result;
    result.status = ParseResult::Status::Complete;
    result.consumed = consumed;
    result.message = std::move(message);
    return result;
}

bool is_digit(std::uint8_t c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<int> parse_protocol_version(std::span<const std::uint8_t, 12> b) {
    // "RFB xxx.yyy\n"
    if (b[0] != 'R' || b[1] != 'F' || b[2] != 'B' || b[3] != ' ' || b[7] != '.' || b[11] != '\n') {
        return std::nullopt;
    }
    for (std::size_t i : {4, 5, 6, 8, 9, 10}) {
        if (!is_digit(b[i])) return std::nullopt;
    }
    const int major = (b[4] - '0') * 100 + (b[5] - '0') * 10 + (b[6] - '0');
    const int minor = (b[8] - '0') * 100 + (b[9] - '0') * 10 + (b[10] - '0');
    if (major != 3) return std::nullopt;
    if (minor >= 8) return 8;
    if (minor == 7) return 7;
    return 3;
}

ParseResult parse_client_message(std::span<const std::uint8_t> b) {
    if (b.empty()) return need_more();
    switch (b[0]) {
        case 0: {  // SetPixelFormat: type, 3 padding, 16 format
            if (b.size() < 20) return need_more();
            return complete(20, SetPixelFormat{PixelFormat::decode(b.subspan<4, 16>())});
        }
        case 2: {  // SetEncodings: type, padding, u16 count, count * s32
            if (b.size() < 4) return need_more();
            const std::size_t count = u16(b, 2);
            if (count > k_max_encodings) {
                return invalid(fmt::format("SetEncodings lists {} encodings (at most {})", count, k_max_encodings));
            }
            if (b.size() < 4 + count * 4) return need_more();
            SetEncodings message;
            message.encodings.reserve(count);
            for (std::size_t i = 0; i < count; ++i) {
                message.encodings.push_back(static_cast<std::int32_t>(u32(b, 4 + i * 4)));
            }
            return complete(4 + count * 4, std::move(message));
        }
        case 3: {  // FramebufferUpdateRequest
            if (b.size() < 10) return need_more();
            return complete(10, UpdateRequest{b[1] != 0, u16(b, 2), u16(b, 4), u16(b, 6), u16(b, 8)});
        }
        case 4: {  // KeyEvent: type, down, 2 padding, keysym
            if (b.size() < 8) return need_more();
            return complete(8, KeyEvent{b[1] != 0, u32(b, 4)});
        }
        case 5: {  // PointerEvent
            if (b.size() < 6) return need_more();
            return complete(6, PointerEvent{b[1], u16(b, 2), u16(b, 4)});
        }
        case 6: {  // ClientCutText: type, 3 padding, u32 length, text (skipped by the caller)
            if (b.size() < 8) return need_more();
            return complete(8, CutText{u32(b, 4)});
        }
        case 251: {  // SetDesktopSize: type, pad, w, h, screens, pad, screens * 16
            if (b.size() < 8) return need_more();
            const std::size_t size = 8 + std::size_t{b[6]} * 16;
            if (b.size() < size) return need_more();
            return complete(size, SetDesktopSize{u16(b, 2), u16(b, 4)});
        }
        case 255: {  // QEMU client message: subtype 0 is the extended key event
            if (b.size() < 2) return need_more();
            if (b[1] != 0) return invalid(fmt::format("QEMU client message subtype {} is not supported (0)", b[1]));
            if (b.size() < 12) return need_more();
            return complete(12, ExtendedKeyEvent{u16(b, 2) != 0, u32(b, 4), u32(b, 8)});
        }
        default:
            return invalid(fmt::format("unknown client message type {}", b[0]));
    }
}

}  // namespace corral::display::rfb
