#include "daemon/vnc_relay.h"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

using namespace std::chrono_literals;
using namespace std::string_literals;

/// A viewer's WebSocket: records what the relay sends, and holds when_queue_below() callbacks
/// while `hold` is set (a viewer that does not read).
class FakeViewer final : public WebSocketConnection {
public:
    void send_text(std::string) override {}
    void send_binary(std::string bytes) override {
        std::lock_guard lock(m_mutex);
        m_received += bytes;
        m_changed.notify_all();
    }
    void close() override {
        std::lock_guard lock(m_mutex);
        m_closed = true;
        m_changed.notify_all();
    }
    void when_queue_below(size_t, std::function<void()> ready) override {
        {
            std::lock_guard lock(m_mutex);
            if (m_hold) {
                m_waiting.push_back(std::move(ready));
                m_changed.notify_all();
                return;
            }
        }
        ready();
    }

    void hold(bool on) {
        std::vector<std::function<void()>> release;
        {
            std::lock_guard lock(m_mutex);
            m_hold = on;
            if (!on) release.swap(m_waiting);
        }
        for (auto& ready : release) ready();
    }
    /// Waits (up to 20 s, a bound for a broken relay, not a timing check) until `done` holds.
    bool wait_for(const std::function<bool()>& done) {
        std::unique_lock lock(m_mutex);
        return m_changed.wait_for(lock, 20s, done);
    }
    size_t received_size() {
        std::lock_guard lock(m_mutex);
        return m_received.size();
    }

    std::mutex m_mutex;
    std::condition_variable m_changed;
    std::string m_received;
    std::vector<std::function<void()>> m_waiting;
    bool m_hold = false;
    bool m_closed = false;
};

struct SocketPair {
    UniqueFd relay_end;
    UniqueFd server_end;  // plays the VM's RFB server
    SocketPair() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        relay_end = UniqueFd(fds[0]);
        server_end = UniqueFd(fds[1]);
    }
};

std::string read_exactly(int fd, size_t count) {
    std::string data(count, '\0');
    size_t done = 0;
    while (done < count) {
        const ssize_t n = ::read(fd, data.data() + done, count - done);
        if (n <= 0) break;
        done += static_cast<size_t>(n);
    }
    data.resize(done);
    return data;
}

TEST(VncRelay, BytesGoBothWaysAndTheViewersAreFiltered) {
    SocketPair pair;
    auto viewer = std::make_shared<FakeViewer>();
    auto relay = VncRelay::start(std::move(pair.relay_end), viewer, /*view_only=*/true);
    ASSERT_EQ(::write(pair.server_end.get(), "RFB 003.008\n", 12), 12);
    EXPECT_TRUE(viewer->wait_for([&] { return viewer->m_received == "RFB 003.008\n"; }));
    // Version, security None, ClientInit, a key press (dropped: view only), an update request.
    const std::string update = "\x03\x00\x00\x00\x00\x00\x04\x00\x03\x00"s;
    relay->from_viewer("RFB 003.008\n\x01\x01"s + "\x04\x01\x00\x00\x00\x00\x00\x61"s + update);
    EXPECT_EQ(read_exactly(pair.server_end.get(), 14 + update.size()), "RFB 003.008\n\x01\x01"s + update);
}

TEST(VncRelay, ASlowViewerStopsTheReadingInsteadOfQueueingWithoutBound) {
    SocketPair pair;
    auto viewer = std::make_shared<FakeViewer>();
    viewer->hold(true);
    auto relay = VncRelay::start(std::move(pair.relay_end), viewer, false);
    constexpr size_t k_total = 8 * 1024 * 1024;
    std::thread server([fd = pair.server_end.get()] {
        const std::string chunk(64 * 1024, 'x');
        for (size_t sent = 0; sent < k_total;) {
            const ssize_t n = ::send(fd, chunk.data(), std::min(chunk.size(), k_total - sent), MSG_NOSIGNAL);
            if (n <= 0) return;
            sent += static_cast<size_t>(n);
        }
    });
    // The relay read once, then waits for the viewer: it never holds more than one read's worth.
    ASSERT_TRUE(viewer->wait_for([&] { return !viewer->m_waiting.empty(); }));
    EXPECT_LE(viewer->received_size(), 64u * 1024u);
    // The viewer catches up: everything arrives, in order and whole.
    viewer->hold(false);
    EXPECT_TRUE(viewer->wait_for([&] { return viewer->m_received.size() == k_total; }));
    server.join();
}

TEST(VncRelay, AViewerSendingWhatIsNotRfbIsClosed) {
    SocketPair pair;
    auto viewer = std::make_shared<FakeViewer>();
    auto relay = VncRelay::start(std::move(pair.relay_end), viewer, false);
    relay->from_viewer("RFB 003.008\n\x01\x01\x07"s);  // message type 7: unknown
    EXPECT_TRUE(viewer->wait_for([&] { return viewer->m_closed; }));
}

TEST(VncRelay, TheServerEndingClosesTheViewer) {
    SocketPair pair;
    auto viewer = std::make_shared<FakeViewer>();
    auto relay = VncRelay::start(std::move(pair.relay_end), viewer, false);
    pair.server_end.reset();
    EXPECT_TRUE(viewer->wait_for([&] { return viewer->m_closed; }));
}

}  // namespace
}  // namespace corral::daemon
