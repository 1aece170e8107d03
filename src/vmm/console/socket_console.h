#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>

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

    /// Listens on `path` (which must not exist yet; it is removed on destruction). `what` names
    /// the option in errors.
    static Result<std::unique_ptr<SocketConsole>> listen(const std::string& path,
                                                         std::string_view what = "--console");
    ~SocketConsole();

    int listen_fd() const { return m_listen.get(); }
    /// The connected client's fd, or -1.
    int client_fd() const;
    /// Accepts a waiting connection, replacing the current client, and replays the scrollback.
    void accept_client();
    /// Reads what the client sent; 0 when it sent nothing or went away (then it is dropped).
    size_t read_input(std::span<uint8_t> buffer);
    /// Like read_input(), but a client that went away is kept (closed later by drop_client()),
    /// so that a caller watching its fd can stop watching before the fd number is reused.
    size_t read_input_keep(std::span<uint8_t> buffer, bool& client_gone);
    /// Closes the client if it is still `fd`.
    void drop_client(int fd);
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
