#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/unique_fd.h"
#include "cli/api_client.h"
#include "daemon/http/router.h"

namespace corral::daemon {

/// Source side of one disk copy of a live migration (docs/migration.md "Disks on a local
/// pool"): relays the NBD connection that the VM's QEMU makes for its block mirror (accepted
/// on `listener`) through a WebSocket to the destination corrald (/migrations/{id}/disks),
/// both ways, over the same authenticated TLS API as the memory stream: no NBD port is open.
/// Either side ending ends the other, so that a lost destination fails the mirror (the VM runs
/// on here) instead of leaving it waiting.
class DiskRelay {
public:
    DiskRelay(UniqueFd listener, std::unique_ptr<cli::WebSocketSession> session, std::string what);
    /// Cuts both sides and joins.
    ~DiskRelay();
    DiskRelay(const DiskRelay&) = delete;
    DiskRelay& operator=(const DiskRelay&) = delete;

    /// Why the relay ended early ("" while it runs, or after a normal end).
    std::string error();

private:
    void pump();
    void from_destination(std::string_view data);
    void set_error(const std::string& why);
    void cut();

    std::string m_what;
    UniqueFd m_listener;
    std::unique_ptr<cli::WebSocketSession> m_session;
    std::mutex m_mutex;   // guards m_stream's writes, m_early and m_error
    UniqueFd m_stream;    // QEMU's NBD connection, once accepted
    std::string m_early;  // the destination's bytes (its NBD greeting) before QEMU connected
    std::string m_error;
    std::atomic<bool> m_stopping{false};
    std::atomic<int> m_stream_fd{-1};
    std::thread m_session_thread;
    std::thread m_reader;
};

/// Destination side: relays a /migrations/{id}/disks WebSocket to `nbd` (a connection to the
/// incoming QEMU's NBD server), both ways, until either ends. The source's bytes are written
/// as they come (blocking the WebSocket's thread paces the source, as for the memory stream);
/// the server's answers (a few bytes per request: the mirror only writes) go back unpaced, as
/// waiting for the WebSocket's queue on its own blocked thread could deadlock.
WebSocketHandlers relay_disk_stream(UniqueFd nbd, std::weak_ptr<WebSocketConnection> peer, std::string what);

}  // namespace corral::daemon
