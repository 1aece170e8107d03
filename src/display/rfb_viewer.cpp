#include "display/rfb_viewer.h"

#include <linux/input-event-codes.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "display/keymap.h"

namespace corral::display::rfb {

namespace {

constexpr char k_server_version[] = "RFB 003.008\n";
constexpr std::uint8_t k_security_none = 1;
// The most output one viewer may have waiting: one full 4K update in raw (33 MB) fits.
constexpr std::size_t k_output_max = 64u << 20;

// `rect` cut to a width x height screen (empty when outside).
Rect clip(Rect rect, std::uint32_t width, std::uint32_t height) {
    if (rect.x >= width || rect.y >= height) return {};
    rect.width = std::min(rect.width, width - rect.x);
    rect.height = std::min(rect.height, height - rect.y);
    return rect;
}

Rect bounding_box(Rect a, Rect b) {
    if (a.width == 0 || a.height == 0) return b;
    if (b.width == 0 || b.height == 0) return a;
    const std::uint32_t x = std::min(a.x, b.x);
    const std::uint32_t y = std::min(a.y, b.y);
    const std::uint32_t right = std::max(a.x + a.width, b.x + b.width);
    const std::uint32_t bottom = std::max(a.y + a.height, b.y + b.height);
    return {x, y, right - x, bottom - y};
}

// A hash of `count` 4-byte pixels, never 0 (0 marks a row not sent yet).
std::uint64_t hash_pixels(const std::uint8_t* pixels, std::size_t count) {
    std::uint64_t hash = 0x9e3779b97f4a7c15ull ^ count;
    std::size_t i = 0;
    for (; i + 2 <= count; i += 2) {
        std::uint64_t word = 0;
        std::memcpy(&word, pixels + i * 4, 8);
        hash = (hash ^ (word & 0x00ffffff00ffffffull)) * 0xff51afd7ed558ccdull;
        hash ^= hash >> 32;
    }
    if (i < count) {
        std::uint32_t word = 0;
        std::memcpy(&word, pixels + i * 4, 4);
        hash = (hash ^ (word & 0x00ffffffu)) * 0xff51afd7ed558ccdull;
        hash ^= hash >> 32;
    }
    return hash | 1;
}

}  // namespace

Viewer::Viewer(UniqueFd fd, ViewerAccess access, Framebuffer& framebuffer, InputSink* input, std::string name)
    : m_fd(std::move(fd)), m_access(input ? access : ViewerAccess::ViewOnly), m_framebuffer(framebuffer),
      m_input(input), m_name(std::move(name)) {
    append({reinterpret_cast<const std::uint8_t*>(k_server_version), 12});
}

Viewer::~Viewer() {
    // Keys this viewer left pressed would repeat in the guest forever: release them.
    if (m_access == ViewerAccess::Full) {
        for (std::uint16_t code : m_keys_down) m_input->key(code, false);
    }
}

short Viewer::poll_events() const {
    if (m_closed) return 0;
    short events = 0;
    if (pending_output() < k_output_pause && m_in.size() < k_input_max) events |= POLLIN;
    if (pending_output() > 0) events |= POLLOUT;
    return events;
}

void Viewer::close(std::string reason) {
    if (m_closed) return;
    m_closed = true;
    m_close_reason = std::move(reason);
}

void Viewer::on_readable() {
    std::uint8_t buffer[16384];
    // Read at most what the input buffer may hold, then let the others have their turn.
    while (!m_closed && m_in.size() < k_input_max) {
        const std::size_t room = std::min(sizeof buffer, k_input_max - m_in.size());
        const ssize_t n = ::recv(m_fd.get(), buffer, room, MSG_DONTWAIT);
        if (n == 0) {
            close("the viewer closed the connection");
            return;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) close(fmt::format("reading: {}", std::strerror(errno)));
            break;
        }
        handle_input({buffer, static_cast<std::size_t>(n)});
        if (static_cast<std::size_t>(n) < room) break;
    }
}

void Viewer::handle_input(std::span<const std::uint8_t> bytes) {
    if (m_closed) return;
    m_in.insert(m_in.end(), bytes.begin(), bytes.end());
    process();
}

void Viewer::on_writable() {
    flush();
    // Messages left unread while the output was full can go on now.
    if (!m_closed && pending_output() < k_output_pause) process();
}

void Viewer::on_frame_changed() {
    send_update();
    flush();
}

void Viewer::check_timeouts(Clock::time_point now) {
    if (m_phase != Phase::Normal && now - m_started > k_stall_timeout) {
        close("the viewer did not finish the handshake in 30 s");
    } else if (pending_output() > 0 && now - m_last_progress > k_stall_timeout) {
        close("the viewer read nothing for 30 s");
    }
}

void Viewer::append(std::span<const std::uint8_t> bytes) {
    if (pending_output() == 0) m_last_progress = Clock::now();
    m_out.insert(m_out.end(), bytes.begin(), bytes.end());
    if (pending_output() > k_output_max) close("the viewer does not read its updates");
}

void Viewer::flush() {
    while (!m_closed && pending_output() > 0) {
        const ssize_t n = ::send(m_fd.get(), m_out.data() + m_out_offset, pending_output(), MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) close(fmt::format("writing: {}", std::strerror(errno)));
            break;
        }
        m_out_offset += static_cast<std::size_t>(n);
        m_last_progress = Clock::now();
    }
    if (pending_output() == 0) {
        m_out.clear();
        m_out_offset = 0;
    } else if (m_out_offset > (1u << 20) && m_out_offset > m_out.size() / 2) {
        m_out.erase(m_out.begin(), m_out.begin() + static_cast<std::ptrdiff_t>(m_out_offset));
        m_out_offset = 0;
    }
}

void Viewer::process() {
    std::size_t offset = 0;
    while (!m_closed) {
        if (m_skip > 0) {
            const std::size_t drop = static_cast<std::size_t>(std::min<std::uint64_t>(m_skip, m_in.size() - offset));
            offset += drop;
            m_skip -= drop;
            if (m_skip > 0) break;
            continue;
        }
        if (m_phase != Phase::Normal) {
            const std::size_t before = offset;
            // Handshake steps are small; process_handshake consumes one step or nothing.
            std::span<const std::uint8_t> rest(m_in.data() + offset, m_in.size() - offset);
            std::size_t used = 0;
            switch (m_phase) {
                case Phase::Version: {
                    if (rest.size() < 12) break;
                    const auto minor = parse_protocol_version(rest.first<12>());
                    if (!minor) {
                        close("the viewer's protocol version is not RFB 3.x");
                        break;
                    }
                    m_minor_version = *minor;
                    used = 12;
                    if (m_minor_version == 3) {
                        // 3.3: the server decides the security type, and None has no result.
                        std::vector<std::uint8_t> out;
                        put_u32(out, k_security_none);
                        append(out);
                        m_phase = Phase::ClientInit;
                    } else {
                        const std::uint8_t types[] = {1, k_security_none};
                        append(types);
                        m_phase = Phase::Security;
                    }
                    break;
                }
                case Phase::Security: {
                    if (rest.empty()) break;
                    used = 1;
                    if (rest[0] != k_security_none) {
                        if (m_minor_version == 8) {
                            std::vector<std::uint8_t> out;
                            const std::string reason = "security type None (1) is the only one offered";
                            put_u32(out, 1);
                            put_u32(out, static_cast<std::uint32_t>(reason.size()));
                            out.insert(out.end(), reason.begin(), reason.end());
                            append(out);
                        }
                        close(fmt::format("the viewer chose security type {} (only None, 1, is offered)", rest[0]));
                        break;
                    }
                    if (m_minor_version == 8) {
                        std::vector<std::uint8_t> out;
                        put_u32(out, 0);  // SecurityResult OK (3.7 has none for None)
                        append(out);
                    }
                    m_phase = Phase::ClientInit;
                    break;
                }
                case Phase::ClientInit: {
                    if (rest.empty()) break;
                    // The shared flag is ignored: viewers always share (a new one never drops the others).
                    used = 1;
                    const Framebuffer::Changes now = m_framebuffer.changes_since(0, 0);
                    m_width = now.width;
                    m_height = now.height;
                    m_generation = now.generation;
                    std::vector<std::uint8_t> out;
                    put_u16(out, static_cast<std::uint16_t>(m_width));
                    put_u16(out, static_cast<std::uint16_t>(m_height));
                    const auto format = m_format.encode();
                    out.insert(out.end(), format.begin(), format.end());
                    put_u32(out, static_cast<std::uint32_t>(m_name.size()));
                    out.insert(out.end(), m_name.begin(), m_name.end());
                    append(out);
                    m_phase = Phase::Normal;
                    break;
                }
                case Phase::Normal:
                    break;
            }
            offset += used;
            if (offset == before) break;
            continue;
        }
        if (pending_output() >= k_output_pause) break;
        const ParseResult result = parse_client_message({m_in.data() + offset, m_in.size() - offset});
        if (result.status == ParseResult::Status::NeedMore) break;
        if (result.status == ParseResult::Status::Invalid) {
            close(result.error);
            break;
        }
        offset += result.consumed;
        handle_message(result.message);
    }
    m_in.erase(m_in.begin(), m_in.begin() + static_cast<std::ptrdiff_t>(offset));
    send_update();
    flush();
}

void Viewer::handle_message(const ClientMessage& message) {
    const bool input_allowed = m_access == ViewerAccess::Full;
    if (const auto* pixel_format = std::get_if<SetPixelFormat>(&message)) {
        if (auto valid = pixel_format->format.validate(); !valid) {
            close(valid.error().message());
            return;
        }
        m_format = pixel_format->format;
    } else if (const auto* encodings = std::get_if<SetEncodings>(&message)) {
        set_encodings(encodings->encodings);
    } else if (const auto* request = std::get_if<UpdateRequest>(&message)) {
        m_request_pending = true;
        if (!request->incremental) {
            m_request_area = bounding_box(m_request_area, Rect{request->x, request->y, request->width, request->height});
            m_request_full = true;
        }
    } else if (const auto* key = std::get_if<KeyEvent>(&message)) {
        if (input_allowed) handle_key(key->keysym, key->down);
    } else if (const auto* pointer = std::get_if<PointerEvent>(&message)) {
        if (input_allowed) {
            const std::uint32_t width = m_framebuffer.width();
            const std::uint32_t height = m_framebuffer.height();
            m_input->pointer(std::min<std::uint32_t>(pointer->x, width - 1),
                             std::min<std::uint32_t>(pointer->y, height - 1), width, height, pointer->buttons);
        }
    } else if (const auto* cut = std::get_if<CutText>(&message)) {
        m_skip = cut->length;  // the clipboard is not passed to the guest
    } else if (const auto* extended = std::get_if<ExtendedKeyEvent>(&message)) {
        if (input_allowed) {
            const std::uint16_t code = xt_scancode_to_linux(extended->scancode);
            if (code != 0) {
                send_key(code, extended->down);
            } else {
                handle_key(extended->keysym, extended->down);
            }
        }
    } else if (std::get_if<SetDesktopSize>(&message)) {
        // The guest decides its mode: a viewer's request is answered "prohibited" (status 1).
        m_desktop_change_reply = 1;
    }
}

void Viewer::set_encodings(const std::vector<std::int32_t>& encodings) {
    bool chosen = false;
    m_encoding = Encoding::Raw;
    const bool had_extended_key = m_wants_extended_key;
    const bool had_extended_desktop = m_wants_extended_desktop_size;
    m_wants_desktop_size = m_wants_extended_desktop_size = m_wants_extended_key = false;
    for (const std::int32_t encoding : encodings) {
        if (!chosen && (encoding == k_encoding_raw || encoding == k_encoding_zlib || encoding == k_encoding_tight)) {
            // The viewer lists encodings in its order of preference.
            m_encoding = encoding == k_encoding_tight  ? Encoding::Tight
                         : encoding == k_encoding_zlib ? Encoding::Zlib
                                                       : Encoding::Raw;
            chosen = true;
        } else if (encoding == k_encoding_desktop_size) {
            m_wants_desktop_size = true;
        } else if (encoding == k_encoding_extended_desktop_size) {
            m_wants_extended_desktop_size = true;
        } else if (encoding == k_encoding_qemu_extended_key) {
            m_wants_extended_key = true;
        } else if (encoding >= k_encoding_compress_level_0 && encoding <= k_encoding_compress_level_9) {
            m_encoder.set_compression_level(encoding - k_encoding_compress_level_0);
        }
    }
    // Both are acknowledged with a pseudo-rectangle: that is how a viewer learns the server has them.
    if (m_wants_extended_key && !had_extended_key) m_announce_extended_key = true;
    if (m_wants_extended_desktop_size && !had_extended_desktop) m_announce_desktop = true;
}

void Viewer::handle_key(std::uint32_t keysym, bool down) {
    if (keysym == k_keysym_shift_left) m_shift_left = down;
    if (keysym == k_keysym_shift_right) m_shift_right = down;
    const KeyTranslation key = keysym_to_linux(keysym);
    if (key.code == 0) return;
    if (!down || key.shift == ShiftNeed::Any) {
        send_key(key.code, down);
        return;
    }
    const bool shift_held = m_shift_left || m_shift_right;
    if (key.shift == ShiftNeed::Shifted && !shift_held) {
        // '!' typed without Shift held (a client that sends characters): press Shift around it.
        send_key(KEY_LEFTSHIFT, true);
        send_key(key.code, true);
        send_key(KEY_LEFTSHIFT, false);
    } else if (key.shift == ShiftNeed::Unshifted && shift_held) {
        // '1' while Shift is held (Caps Lock-like clients): lift Shift for this key only.
        if (m_shift_left) send_key(KEY_LEFTSHIFT, false);
        if (m_shift_right) send_key(KEY_RIGHTSHIFT, false);
        send_key(key.code, true);
        if (m_shift_left) send_key(KEY_LEFTSHIFT, true);
        if (m_shift_right) send_key(KEY_RIGHTSHIFT, true);
    } else {
        send_key(key.code, true);
    }
}

void Viewer::send_key(std::uint16_t code, bool down) {
    if (down) {
        m_keys_down.insert(code);
    } else {
        m_keys_down.erase(code);
    }
    m_input->key(code, down);
}

// Records the hashes of `rect`'s rows (its pixels are in m_pixels) as sent; with `trim`, returns
// the part of `rect` whose rows or 64-pixel columns differ from what was sent before (empty:
// nothing did), else `rect`.
Rect Viewer::trim_to_changes(Rect rect, bool trim) {
    constexpr std::uint32_t tile = Framebuffer::k_tile;
    if (rect.y + rect.height > m_row_hashes.size() / std::max<std::uint32_t>(m_hash_columns, 1)) return rect;
    std::uint32_t first_row = rect.height, last_row = 0, first_column = ~0u, last_column = 0;
    for (std::uint32_t row = 0; row < rect.height; ++row) {
        for (std::uint32_t x = 0; x < rect.width;) {
            const std::uint32_t column = (rect.x + x) / tile;
            const std::uint32_t run = std::min(rect.width - x, (column + 1) * tile - (rect.x + x));
            if (column >= m_hash_columns) break;
            const std::uint64_t hash =
                hash_pixels(m_pixels.data() + (std::size_t{row} * rect.width + x) * 4, run);
            std::uint64_t& sent = m_row_hashes[std::size_t{rect.y + row} * m_hash_columns + column];
            if (sent != hash) {
                first_row = std::min(first_row, row);
                last_row = row;
                first_column = std::min(first_column, column);
                last_column = std::max(last_column, column);
                sent = hash;
            }
            x += run;
        }
    }
    if (!trim) return rect;
    if (first_row == rect.height) return {};
    const std::uint32_t left = std::max(rect.x, first_column * tile);
    const std::uint32_t right = std::min(rect.x + rect.width, (last_column + 1) * tile);
    return {left, rect.y + first_row, right - left, last_row - first_row + 1};
}

void Viewer::send_update() {
    if (m_closed || m_phase != Phase::Normal || !m_request_pending) return;
    // Wait until the viewer has read most of the previous update: a slow viewer gets fewer,
    // fresher updates instead of a growing queue.
    if (pending_output() >= k_output_pause) return;
    const Framebuffer::Changes changes = m_framebuffer.changes_since(m_serial, m_generation);
    const bool resized = changes.generation != m_generation;
    const bool tells_size = resized && (m_wants_extended_desktop_size || m_wants_desktop_size);
    if (tells_size) {
        m_width = changes.width;
        m_height = changes.height;
    }
    std::vector<Rect> rects;
    if (resized) {
        rects.push_back({0, 0, changes.width, changes.height});
    } else if (m_request_full) {
        rects.push_back(m_request_area);
    } else {
        rects = changes.rects;
    }
    const bool pseudo = tells_size || m_announce_extended_key || m_announce_desktop || m_desktop_change_reply >= 0;
    if (!pseudo && rects.empty()) return;  // an incremental request waits for a change

    std::vector<std::uint8_t>& out = m_out;
    if (pending_output() == 0) m_last_progress = Clock::now();
    const std::size_t header_at = out.size();
    put_u8(out, 0);  // FramebufferUpdate
    put_u8(out, 0);
    put_u16(out, 0);  // the rectangle count, set below
    std::size_t count = 0;
    auto put_extended_desktop = [&](std::uint16_t reason, std::uint16_t status) {
        RectEncoder::put_header(out, {reason, status, m_width, m_height}, k_encoding_extended_desktop_size);
        put_u8(out, 1);  // one screen
        put_u8(out, 0);
        put_u16(out, 0);
        put_u32(out, 0);  // its id
        put_u16(out, 0);
        put_u16(out, 0);
        put_u16(out, static_cast<std::uint16_t>(m_width));
        put_u16(out, static_cast<std::uint16_t>(m_height));
        put_u32(out, 0);  // flags
        ++count;
    };
    if (tells_size) {
        if (m_wants_extended_desktop_size) {
            put_extended_desktop(0, 0);  // reason 0: the server changed the size
        } else {
            RectEncoder::put_header(out, {0, 0, m_width, m_height}, k_encoding_desktop_size);
            ++count;
        }
        m_announce_desktop = false;
    }
    if (m_announce_desktop) {
        put_extended_desktop(0, 0);
        m_announce_desktop = false;
    }
    if (m_desktop_change_reply >= 0) {
        if (m_wants_extended_desktop_size) put_extended_desktop(1, static_cast<std::uint16_t>(m_desktop_change_reply));
        m_desktop_change_reply = -1;
    }
    if (m_announce_extended_key) {
        RectEncoder::put_header(out, {0, 0, m_width, m_height}, k_encoding_qemu_extended_key);
        ++count;
        m_announce_extended_key = false;
    }
    // A viewer that cannot be told about a new size keeps the old one: send only what fits it.
    const std::uint32_t width = std::min(m_width, changes.width);
    const std::uint32_t height = std::min(m_height, changes.height);
    const std::uint32_t hash_columns = (changes.width + Framebuffer::k_tile - 1) / Framebuffer::k_tile;
    if (resized || m_hash_columns != hash_columns || m_row_hashes.size() != std::size_t{hash_columns} * changes.height) {
        m_hash_columns = hash_columns;
        m_row_hashes.assign(std::size_t{hash_columns} * changes.height, 0);
    }
    const bool trim = !resized && !m_request_full;
    for (Rect rect : rects) {
        rect = clip(rect, width, height);
        if (rect.width == 0 || rect.height == 0) continue;
        m_framebuffer.read(rect, m_pixels);
        // The guest may have resized since changes_since: pad, the next update sends the new screen.
        m_pixels.resize(std::size_t{rect.width} * rect.height * 4, 0);
        const Rect changed = trim_to_changes(rect, trim);
        if (changed.width == 0) continue;
        if (changed.width == rect.width && changed.height == rect.height) {
            count += m_encoder.encode(rect, m_pixels, m_encoding, m_format, out);
            continue;
        }
        m_trimmed.clear();
        const std::size_t stride = std::size_t{rect.width} * 4;
        for (std::uint32_t row = changed.y - rect.y; row < changed.y - rect.y + changed.height; ++row) {
            const std::uint8_t* start = m_pixels.data() + row * stride + std::size_t{changed.x - rect.x} * 4;
            m_trimmed.insert(m_trimmed.end(), start, start + std::size_t{changed.width} * 4);
        }
        count += m_encoder.encode(changed, m_trimmed, m_encoding, m_format, out);
    }
    if (count > 0xffff) {
        close("an update needed more than 65535 rectangles");
        return;
    }
    out[header_at + 2] = static_cast<std::uint8_t>(count >> 8);
    out[header_at + 3] = static_cast<std::uint8_t>(count);
    m_serial = changes.serial;
    m_generation = changes.generation;
    m_request_pending = false;
    m_request_full = false;
    m_request_area = {};
    if (pending_output() > k_output_max) close("the viewer does not read its updates");
}

}  // namespace corral::display::rfb
