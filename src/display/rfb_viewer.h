#pragma once

#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "display/framebuffer.h"
#include "display/input_sink.h"
#include "display/pixel_format.h"
#include "display/rfb_encoder.h"
#include "display/rfb_messages.h"
#include "display/rfb_server.h"

namespace corral::display::rfb {

/// One viewer's connection: the handshake, its messages, and the updates it asked for. Owned
/// and driven by the server's thread (not thread-safe). Everything the viewer sends is bounded,
/// and its output waits in a buffer: the connection's socket is non-blocking.
class Viewer {
public:
    using Clock = std::chrono::steady_clock;

    /// Output waiting beyond this: the viewer's messages are not read (so it cannot ask for
    /// more) until it has read what it got.
    static constexpr std::size_t k_output_pause = 4u << 20;
    /// A viewer that has not read anything for this long while output waits is disconnected,
    /// as is one that has not finished the handshake in this time.
    static constexpr std::chrono::seconds k_stall_timeout{30};
    /// The most input buffered at once (the largest message is a full SetEncodings: 4 KiB).
    static constexpr std::size_t k_input_max = 64u << 10;

    Viewer(UniqueFd fd, ViewerAccess access, Framebuffer& framebuffer, InputSink* input, std::string name);
    ~Viewer();
    Viewer(const Viewer&) = delete;
    Viewer& operator=(const Viewer&) = delete;

    int fd() const { return m_fd.get(); }
    /// poll() events this connection waits for now.
    short poll_events() const;
    /// Reads what the socket has and handles it.
    void on_readable();
    /// Writes buffered output.
    void on_writable();
    /// The framebuffer changed: answer a pending update request.
    void on_frame_changed();
    /// Disconnects a viewer that stalled (see k_stall_timeout).
    void check_timeouts(Clock::time_point now);

    bool closed() const { return m_closed; }
    /// Why the connection ended (empty while it is open).
    const std::string& close_reason() const { return m_close_reason; }

    /// Handles bytes as if read from the socket (the server's path, and the parser tests').
    void handle_input(std::span<const std::uint8_t> bytes);

private:
    enum class Phase { Version, Security, ClientInit, Normal };

    void close(std::string reason);
    void process();
    bool process_handshake();
    void handle_message(const ClientMessage& message);
    void handle_key(std::uint32_t keysym, bool down);
    void send_key(std::uint16_t code, bool down);
    void set_encodings(const std::vector<std::int32_t>& encodings);
    void send_update();
    Rect trim_to_changes(Rect rect, bool trim);
    void flush();
    void append(std::span<const std::uint8_t> bytes);
    std::size_t pending_output() const { return m_out.size() - m_out_offset; }

    UniqueFd m_fd;
    ViewerAccess m_access;
    Framebuffer& m_framebuffer;
    InputSink* m_input;
    std::string m_name;

    Phase m_phase = Phase::Version;
    int m_minor_version = 8;
    bool m_closed = false;
    std::string m_close_reason;
    Clock::time_point m_started = Clock::now();
    Clock::time_point m_last_progress = Clock::now();

    std::vector<std::uint8_t> m_in;
    std::uint64_t m_skip = 0;  // cut text still to drop
    std::vector<std::uint8_t> m_out;
    std::size_t m_out_offset = 0;

    PixelFormat m_format;
    Encoding m_encoding = Encoding::Raw;
    bool m_wants_desktop_size = false;
    bool m_wants_extended_desktop_size = false;
    bool m_wants_extended_key = false;
    bool m_announce_extended_key = false;
    bool m_announce_desktop = false;
    int m_desktop_change_reply = -1;  // status of a SetDesktopSize to answer, -1: none
    RectEncoder m_encoder;

    bool m_request_pending = false;
    bool m_request_full = false;
    Rect m_request_area;
    std::uint64_t m_serial = 0;
    std::uint64_t m_generation = 0;
    std::uint32_t m_width = 0;   // the size the viewer knows
    std::uint32_t m_height = 0;

    bool m_shift_left = false;
    bool m_shift_right = false;
    std::set<std::uint16_t> m_keys_down;
    std::vector<std::uint8_t> m_pixels;
    std::vector<std::uint8_t> m_trimmed;
    // What this viewer was sent, as a hash per row of each 64-pixel column (0: not sent yet):
    // the framebuffer's damage is 64 x 64 tiles, and these trim a tile band to the rows and
    // columns that really changed (a one-line change sends one line, as QEMU does).
    std::vector<std::uint64_t> m_row_hashes;
    std::uint32_t m_hash_columns = 0;
};

}  // namespace corral::display::rfb
