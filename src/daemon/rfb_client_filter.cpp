#include "daemon/rfb_client_filter.h"

#include <fmt/format.h>

namespace corral::daemon {
namespace {

uint16_t u16_at(const std::string& data, size_t at) {
    return static_cast<uint16_t>((static_cast<uint8_t>(data[at]) << 8) | static_cast<uint8_t>(data[at + 1]));
}

uint32_t u32_at(const std::string& data, size_t at) {
    return (static_cast<uint32_t>(u16_at(data, at)) << 16) | u16_at(data, at + 2);
}

// RFC 6143 7.5 and the community registry (rfbproto.rst): client-to-server message types.
constexpr uint8_t k_set_pixel_format = 0;
constexpr uint8_t k_set_encodings = 2;
constexpr uint8_t k_update_request = 3;
constexpr uint8_t k_key_event = 4;
constexpr uint8_t k_pointer_event = 5;
constexpr uint8_t k_client_cut_text = 6;
constexpr uint8_t k_enable_continuous_updates = 150;
constexpr uint8_t k_client_fence = 248;
constexpr uint8_t k_xvp = 250;
constexpr uint8_t k_set_desktop_size = 251;
constexpr uint8_t k_qemu = 255;

}  // namespace

Result<size_t> RfbClientFilter::next_message(bool& drop) const {
    const std::string& data = m_pending;
    drop = false;
    if (data.empty()) return 0;
    auto whole = [&](size_t length) -> size_t { return data.size() >= length ? length : 0; };
    const auto type = static_cast<uint8_t>(data[0]);
    switch (type) {
        case k_set_pixel_format: return whole(20);
        case k_set_encodings:
            if (data.size() < 4) return 0;
            return whole(4 + 4 * static_cast<size_t>(u16_at(data, 2)));
        case k_update_request: return whole(10);
        case k_key_event: drop = true; return whole(8);
        case k_pointer_event: drop = true; return whole(6);
        case k_client_cut_text: {
            drop = true;
            if (data.size() < 8) return 0;
            // A negative length is RFB's ExtendedClipboard (QEMU offers it; noVNC answers its
            // capabilities with one): that many bytes follow all the same.
            const auto signed_length = static_cast<int32_t>(u32_at(data, 4));
            const uint64_t length = signed_length < 0 ? -static_cast<int64_t>(signed_length)
                                                      : static_cast<uint64_t>(signed_length);
            if (length > k_max_cut_text)
                return fail(fmt::format("the viewer's clipboard text is {} bytes; at most {}", length, k_max_cut_text),
                            EMSGSIZE);
            return whole(8 + static_cast<size_t>(length));
        }
        case k_enable_continuous_updates: return whole(10);
        case k_client_fence: {
            if (data.size() < 9) return 0;
            const auto length = static_cast<uint8_t>(data[8]);
            if (length > 64) return fail(fmt::format("the viewer's fence has {} bytes of payload; at most 64", length), EPROTO);
            return whole(9 + static_cast<size_t>(length));
        }
        case k_xvp: drop = true; return whole(4);
        case k_set_desktop_size: {
            drop = true;
            if (data.size() < 8) return 0;
            return whole(8 + 16 * static_cast<size_t>(static_cast<uint8_t>(data[6])));
        }
        case k_qemu: {
            if (data.size() < 2) return 0;
            const auto subtype = static_cast<uint8_t>(data[1]);
            if (subtype == 0) {  // extended key event: scancodes
                drop = true;
                return whole(12);
            }
            if (subtype == 1) {  // audio: enable, disable (4 bytes) or set format (10)
                if (data.size() < 4) return 0;
                const uint16_t operation = u16_at(data, 2);
                if (operation <= 1) return whole(4);
                if (operation == 2) return whole(10);
                return fail(fmt::format("unknown QEMU audio operation {} from the viewer", operation), EPROTO);
            }
            return fail(fmt::format("unknown QEMU message subtype {} from the viewer", subtype), EPROTO);
        }
        default: return fail(fmt::format("unknown RFB message type {} from the viewer", type), EPROTO);
    }
}

Result<std::string> RfbClientFilter::feed(std::string_view bytes) {
    m_pending.append(bytes);
    std::string out;
    for (;;) {
        size_t length = 0;
        bool drop = false;
        switch (m_stage) {
            case Stage::Version:
                // "RFB 003.008\n": the version decides whether a security choice follows.
                if (m_pending.size() < 12) return out;
                if (m_pending.compare(0, 4, "RFB ") != 0 || m_pending[11] != '\n')
                    return fail("the viewer did not start with an RFB ProtocolVersion", EPROTO);
                length = 12;
                // RFB 3.3: the server picks the security type, the viewer sends no choice.
                m_stage = m_pending.compare(4, 7, "003.003") == 0 ? Stage::ClientInit : Stage::Security;
                break;
            case Stage::Security:
                if (m_pending.empty()) return out;
                length = 1;
                if (m_pending[0] == 1)
                    m_stage = Stage::ClientInit;
                else if (m_pending[0] == 2)
                    m_stage = Stage::VncAuth;
                else
                    return fail(fmt::format("the viewer chose security type {}; only None (1) and VNC (2) pass",
                                            static_cast<int>(static_cast<uint8_t>(m_pending[0]))),
                                EPROTO);
                break;
            case Stage::VncAuth:  // the 16-byte DES response
                if (m_pending.size() < 16) return out;
                length = 16;
                m_stage = Stage::ClientInit;
                break;
            case Stage::ClientInit:  // the shared flag
                if (m_pending.empty()) return out;
                length = 1;
                m_stage = Stage::Messages;
                break;
            case Stage::Messages:
                length = TRY(next_message(drop));
                if (length == 0) return out;
                break;
        }
        if (drop && m_view_only)
            ++m_dropped;
        else
            out.append(m_pending, 0, length);
        m_pending.erase(0, length);
    }
}

}  // namespace corral::daemon
