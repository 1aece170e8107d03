#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace corral::daemon {

/// Follows what a VNC viewer sends to an RFB server (RFB 3.3/3.7/3.8, RFC 6143 and the community
/// extensions noVNC and vncviewer use), message by message, so that a relay can pass on only
/// whole, known messages and, for a view-only viewer, drop every message that would reach the
/// guest: KeyEvent, PointerEvent, ClientCutText, QEMU's extended key event, xvp (power actions)
/// and SetDesktopSize. Anything it does not know ends the connection: an unknown message's length
/// is unknown, so nothing after it could be parsed.
class RfbClientFilter {
public:
    /// The longest ClientCutText accepted (a paste); a longer one ends the connection.
    static constexpr uint32_t k_max_cut_text = 1024 * 1024;

    explicit RfbClientFilter(bool view_only) : m_view_only(view_only) {}

    /// Takes the viewer's next bytes and returns what to forward to the server: every complete
    /// message that passes, in order (an incomplete one waits for more). An error names what was
    /// wrong; the caller then closes the connection.
    Result<std::string> feed(std::string_view bytes);

    /// Messages dropped so far (view-only).
    uint64_t dropped() const { return m_dropped; }

private:
    enum class Stage { Version, Security, VncAuth, ClientInit, Messages };
    /// The length of the message at the front of m_pending: 0 when more bytes are needed to know
    /// (or to have it whole), an error for an unknown or oversized one. `drop` says whether a
    /// view-only viewer's copy is dropped.
    Result<size_t> next_message(bool& drop) const;

    bool m_view_only;
    Stage m_stage = Stage::Version;
    std::string m_pending;
    uint64_t m_dropped = 0;
};

}  // namespace corral::daemon
