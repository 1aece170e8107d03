#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::vmm {

/// The guest console on a unix stream socket, for a parent process (corrald) to attach to.
/// One client at a time: a new connection replaces the old one. What the guest printed before
/// the client connected is kept (the last 64 KiB) and replayed on connect, so no boot output is
/// lost. Output never blocks a vCPU: a client that does not read fast enough loses output
/// (counted), the guest does not stall.
class SocketConsole {
public:
    static constexpr size_t k_scrollback_bytes = 64 * 1024;

    /// Listens on `path` (which must not exist yet; it is removed on destruction).
    static Result<std::unique_ptr<SocketConsole>> listen(const std::string& path);
    ~SocketConsole();

    int listen_fd() const { return m_listen.get(); }
    /// The connected client's fd, or -1.
    int client_fd() const;
    /// Accepts a waiting connection, replacing the current client, and replays the scrollback.
    void accept_client();
    /// Reads what the client sent; 0 when it sent nothing or went away (then it is dropped).
    size_t read_input(std::span<uint8_t> buffer);
    /// Guest output: kept in the scrollback and sent to the client if there is one. Thread-safe.
    void write_output(std::span<const uint8_t> bytes);
    uint64_t dropped_bytes() const;

private:
    SocketConsole(UniqueFd listen, std::string path) : m_listen(std::move(listen)), m_path(std::move(path)) {}
    void send_locked(std::span<const uint8_t> bytes);

    UniqueFd m_listen;
    std::string m_path;
    mutable std::mutex m_mutex;  // guards everything below
    UniqueFd m_client;
    std::deque<uint8_t> m_scrollback;
    uint64_t m_dropped = 0;
};

}  // namespace corral::vmm
