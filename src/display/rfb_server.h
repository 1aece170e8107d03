#pragma once

#include <memory>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"
#include "display/framebuffer.h"
#include "display/input_sink.h"

namespace corral::display {

/// What a viewer may do: view-only viewers see the screen but their keys, pointer and clipboard
/// never reach the InputSink.
enum class ViewerAccess { Full, ViewOnly };

/// Corral's VNC server (RFB 3.8, also 3.3 and 3.7 clients, security type None) for one
/// Framebuffer: Raw, Zlib and Tight encodings, DesktopSize/ExtendedDesktopSize for guest mode
/// changes, QEMU's extended key event (scancodes) besides plain keysyms (US layout). Several
/// viewers at once. It runs its own thread on non-blocking sockets, each viewer with a bounded
/// output buffer: a viewer that stops reading is disconnected, it never blocks the server or
/// the thread writing the framebuffer. docs/display.md lists what is supported.
class RfbServer {
public:
    struct Options {
        /// A unix stream socket for full viewers (empty: none). Created with mode 0600, removed
        /// when the server is destroyed; an existing file there fails start().
        std::string socket_path;
        /// Same, for view-only viewers (empty: none).
        std::string view_only_socket_path;
        /// The desktop name viewers show (ServerInit).
        std::string name = "corral";
    };

    /// Listens on the sockets of `options` and starts the server's thread. Sets `framebuffer`'s
    /// change listener (the server's own; one server per framebuffer). `input` (may be null: all
    /// viewers are view-only) must outlive the server.
    static Result<std::unique_ptr<RfbServer>> start(std::shared_ptr<Framebuffer> framebuffer, InputSink* input,
                                                    Options options);

    /// Stops the thread, disconnects the viewers and removes the sockets.
    ~RfbServer();
    RfbServer(const RfbServer&) = delete;
    RfbServer& operator=(const RfbServer&) = delete;

    /// Serves an already connected stream socket (a relay's, a test's TCP connection) as a
    /// viewer. Thread-safe; the server owns `fd` from now on.
    void add_client(UniqueFd fd, ViewerAccess access);

    /// The number of viewers connected now (handshaking ones included). Thread-safe.
    std::size_t viewer_count() const;

    class Impl;

private:
    explicit RfbServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

}  // namespace corral::display
