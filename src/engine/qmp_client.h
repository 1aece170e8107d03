#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "base/unique_fd.h"

namespace corral::engine {

/// A small synchronous QMP client (QEMU Machine Protocol: JSON objects, one per line).
/// QEMU serves one QMP client at a time, so callers keep a connection only for one call or a
/// few; EmulatedInstance opens one per operation under a mutex.
class QmpClient {
public:
    using Clock = std::chrono::steady_clock;

    /// Connects to QEMU's QMP socket, reads the greeting and negotiates capabilities, all
    /// within `timeout`. ENOENT when the socket does not exist, ETIMEDOUT when QEMU is silent.
    static Result<QmpClient> connect(const std::filesystem::path& socket,
                                     std::chrono::milliseconds timeout);
    /// The same over an already connected stream socket (tests script the peer).
    static Result<QmpClient> handshake(UniqueFd fd, std::chrono::milliseconds timeout);

    /// Runs `command` with `arguments` (null for none) and returns its "return" value. Async
    /// events arriving meanwhile are skipped. A QMP error becomes an Error "CLASS: desc";
    /// ETIMEDOUT when no answer came within `timeout`; ECONNRESET when QEMU hung up.
    Result<nlohmann::json> execute(std::string_view command,
                                   const nlohmann::json& arguments = nullptr,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));

    /// execute() with `fd` passed along (SCM_RIGHTS with the command's first bytes), for the
    /// commands that take one: `getfd` (named for this connection only: use it on the same
    /// client) and `add-fd` (an fd set for /dev/fdset/N paths). QEMU keeps its own copy.
    Result<nlohmann::json> execute_with_fd(std::string_view command, const nlohmann::json& arguments, int fd,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(5));

    /// The greeting's "QMP" object (version, capabilities).
    const nlohmann::json& greeting() const { return m_greeting; }
    /// How many async events were skipped so far.
    size_t skipped_events() const { return m_skipped_events; }

private:
    explicit QmpClient(UniqueFd fd) : m_fd(std::move(fd)) {}
    /// The next complete JSON message (events included).
    Result<nlohmann::json> read_message(Clock::time_point deadline);
    /// Sends `message`; `fd` (unless -1) goes with its first byte.
    Result<void> send(const nlohmann::json& message, Clock::time_point deadline, int fd = -1);
    Result<nlohmann::json> run(std::string_view command, const nlohmann::json& arguments, int fd,
                               std::chrono::milliseconds timeout);

    UniqueFd m_fd;
    std::string m_buffer;  // bytes received and not yet parsed
    nlohmann::json m_greeting;
    size_t m_skipped_events = 0;
    uint64_t m_next_id = 1;
};

}  // namespace corral::engine
