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
#include <vector>

#include "base/event_fd.h"

namespace corral::daemon {

/// A VM's serial console as corrald keeps it: a connection to the engine's console socket, the
/// last 64 KiB of output (kept after the VM stops, for `last_console` and crash reports), and
/// any number of readers (console WebSockets). The first reader that types becomes the writer
/// until it leaves; other readers' input is dropped, so two people never interleave keystrokes.
///
/// Input is queued (at most k_input_queue_bytes) and written to the engine by the relay thread
/// with non-blocking sends, never under the lock: a guest that does not read its console (paused,
/// or busy) makes input be dropped, it never stalls `vm show` or other console sessions.
class VmConsole {
public:
    static constexpr size_t k_scrollback_bytes = 64 * 1024;
    static constexpr size_t k_input_queue_bytes = 64 * 1024;
    using Reader = std::function<void(std::string_view output)>;
    /// What became of input: queued for the guest, refused (another client holds the console),
    /// offline (no guest is attached: the VM does not run), or dropped because the queue is full
    /// (the guest is not reading).
    enum class Input { Queued, Refused, Offline, Full };

    VmConsole() = default;
    ~VmConsole();
    VmConsole(const VmConsole&) = delete;
    VmConsole& operator=(const VmConsole&) = delete;

    /// Connects to `socket` on a thread of its own and relays output until detach(), connecting
    /// again whenever the engine closes it (it may still be creating it, or restarting the
    /// guest). `seed` is output from before (an engine's console log after a daemon restart)
    /// that goes into the scroll-back. `log`, when the engine writes one, is kept bounded
    /// (engine::rotate_console_log) as output arrives.
    void attach(std::filesystem::path socket, std::string seed = {}, std::filesystem::path log = {});
    /// Stops relaying (the VM ended); the scroll-back stays.
    void detach();
    /// Puts a line of corrald's own into the scroll-back and to the readers ("[corrald] web1
    /// started ..."), so that history shows where each run of the VM began and ended.
    void note(const std::string& line);

    /// Adds a reader; `scrollback` receives what was printed so far (atomically with the
    /// subscription, so no byte is lost or repeated between the two).
    uint64_t subscribe(Reader reader, std::string& scrollback);
    void unsubscribe(uint64_t id);
    /// Input from reader `id`, queued whole or not at all; never blocks.
    Input write_input(uint64_t id, std::string_view bytes);

    /// The last `lines` lines of the scroll-back (escape sequences and CRs left as they are).
    std::string tail(size_t lines) const;

private:
    void relay(std::filesystem::path socket, std::filesystem::path log);
    void append_output(std::string_view bytes);
    /// Sends what the queue holds without blocking; false when the connection failed.
    bool send_input(int fd);
    /// Appends what is left to read on the engine's socket, without blocking (the VM ended).
    void drain(int fd, std::vector<char>& buffer);

    mutable std::mutex m_mutex;  // guards everything below except the thread handle
    std::deque<char> m_scrollback;
    std::map<uint64_t, Reader> m_readers;
    uint64_t m_next_id = 1;
    uint64_t m_writer = 0;  // reader id holding the input, 0 = nobody
    bool m_connected = false;  // the relay holds a connection to the engine's console socket
    std::string m_input;       // queued input, sent by the relay thread
    std::unique_ptr<EventFd> m_stop;
    std::unique_ptr<EventFd> m_input_ready;  // write_input -> relay: the queue is not empty
    std::thread m_thread;
};

}  // namespace corral::daemon
