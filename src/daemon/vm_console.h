#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "base/event_fd.h"

namespace corral::daemon {

/// A VM's serial console as corrald keeps it: a connection to the engine's console socket, the
/// last 64 KiB of output (kept after the VM stops, for `last_console` and crash reports), and
/// any number of readers (console WebSockets). The first reader that types becomes the writer
/// until it leaves; other readers' input is dropped, so two people never interleave keystrokes.
class VmConsole {
public:
    static constexpr size_t k_scrollback_bytes = 64 * 1024;
    using Reader = std::function<void(std::string_view output)>;

    VmConsole() = default;
    ~VmConsole();
    VmConsole(const VmConsole&) = delete;
    VmConsole& operator=(const VmConsole&) = delete;

    /// Connects to `socket` on a thread of its own and relays output until detach(), connecting
    /// again whenever the engine closes it (it may still be creating it, or restarting the
    /// guest). `seed` is output from before (an engine's console log after a daemon restart)
    /// that goes into the scroll-back.
    void attach(std::filesystem::path socket, std::string seed = {});
    /// Stops relaying (the VM ended); the scroll-back stays.
    void detach();
    /// Puts a line of corrald's own into the scroll-back and to the readers ("[corrald] web1
    /// started ..."), so that history shows where each run of the VM began and ended.
    void note(const std::string& line);

    /// Adds a reader; `scrollback` receives what was printed so far (atomically with the
    /// subscription, so no byte is lost or repeated between the two).
    uint64_t subscribe(Reader reader, std::string& scrollback);
    void unsubscribe(uint64_t id);
    /// Input from reader `id`; false when another reader holds the console or it is detached.
    bool write_input(uint64_t id, std::string_view bytes);

    /// The last `lines` lines of the scroll-back (escape sequences and CRs left as they are).
    std::string tail(size_t lines) const;

private:
    void relay(std::filesystem::path socket);
    void append_output(std::string_view bytes);

    mutable std::mutex m_mutex;  // guards everything below except the thread handle
    std::deque<char> m_scrollback;
    std::map<uint64_t, Reader> m_readers;
    uint64_t m_next_id = 1;
    uint64_t m_writer = 0;  // reader id holding the input, 0 = nobody
    int m_socket = -1;      // the engine's console socket while attached
    std::unique_ptr<EventFd> m_stop;
    std::thread m_thread;
};

}  // namespace corral::daemon
