#pragma once

#include <memory>
#include <string_view>

#include "base/unique_fd.h"
#include "daemon/http/router.h"

namespace corral::daemon {

/// Relays one VNC viewer's WebSocket to a VM's RFB server, both ways, on a thread of its own:
/// the server's bytes go out as binary frames, the viewer's through an RfbClientFilter (whole,
/// known messages only; a view-only viewer's input is dropped). Buffers are bounded both ways:
/// the relay stops reading the server while the viewer's send queue is above a mark (so a slow
/// viewer slows the server's updates down instead of losing bytes), and a viewer that sends
/// faster than the server reads is disconnected. Either side ending ends the other.
class VncRelay {
public:
    /// Bytes waiting for a slow viewer before the relay stops reading the server.
    static constexpr size_t k_viewer_window = 1024 * 1024;
    /// Bytes from the viewer waiting for a server that does not read before the viewer is cut off.
    static constexpr size_t k_server_backlog = 1024 * 1024;

    /// Starts relaying between `server` (a connected stream socket) and `viewer`.
    static std::shared_ptr<VncRelay> start(UniqueFd server, std::weak_ptr<WebSocketConnection> viewer,
                                           bool view_only);
    /// Stops the relay (its thread ends soon after; the server's connection closes).
    ~VncRelay();

    VncRelay(const VncRelay&) = delete;
    VncRelay& operator=(const VncRelay&) = delete;

    /// The viewer's bytes (its WebSocket messages, binary or text alike, as noVNC sends binary).
    void from_viewer(std::string_view data);

    struct State;

private:
    explicit VncRelay(std::shared_ptr<State> state) : m_state(std::move(state)) {}
    std::shared_ptr<State> m_state;  // shared with the relay's thread, which outlives this
};

}  // namespace corral::daemon
