#include "daemon/vm_console.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <cstring>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "engine/console_log.h"

namespace corral::daemon {
namespace {

/// A real unix socket standing where an engine's console socket would be.
class ConsoleSocket {
public:
    ConsoleSocket() {
        m_dir = std::filesystem::temp_directory_path() / ("vmconsole-" + std::to_string(::getpid()));
        std::filesystem::create_directories(m_dir);
        m_path = m_dir / "console.sock";
        m_listen = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        ::strcpy(address.sun_path, m_path.c_str());
        EXPECT_EQ(::bind(m_listen, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
        EXPECT_EQ(::listen(m_listen, 1), 0);
    }
    ~ConsoleSocket() {
        if (m_client >= 0) ::close(m_client);
        if (m_listen >= 0) ::close(m_listen);
        std::filesystem::remove_all(m_dir);
    }
    void accept_client() { m_client = ::accept(m_listen, nullptr, nullptr); }
    void send(std::string_view text) { ASSERT_EQ(::write(m_client, text.data(), text.size()), ssize_t(text.size())); }
    std::string receive(size_t bytes) {
        std::string got(bytes, '\0');
        size_t done = 0;
        while (done < bytes) {
            ssize_t n = ::read(m_client, got.data() + done, bytes - done);
            if (n <= 0) break;
            done += size_t(n);
        }
        got.resize(done);
        return got;
    }
    /// The engine ends: its client connection and its listening socket go.
    void hang_up() {
        ::close(m_client);
        m_client = -1;
        ::close(m_listen);
        m_listen = -1;
    }
    /// corral-vmm restarting a guest in place: it drops the client but keeps listening.
    void drop_client() {
        ::close(m_client);
        m_client = -1;
    }
    const std::filesystem::path& path() const { return m_path; }

private:
    std::filesystem::path m_dir, m_path;
    int m_listen = -1, m_client = -1;
};

bool eventually(const std::function<bool()>& condition) {
    for (int i = 0; i < 200; ++i) {
        if (condition()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

TEST(VmConsoleTest, RelaysOutputToReadersAndKeepsScrollback) {
    ConsoleSocket engine;
    VmConsole console;
    console.attach(engine.path(), "seed line\n");
    engine.accept_client();
    engine.send("boot 1\nboot 2\n");
    ASSERT_TRUE(eventually([&] { return console.tail(10).find("boot 2") != std::string::npos; }));

    std::string scrollback, live;
    std::mutex mutex;
    uint64_t reader = console.subscribe(
        [&](std::string_view out) {
            std::lock_guard lock(mutex);
            live.append(out);
        },
        scrollback);
    EXPECT_EQ(scrollback, "seed line\nboot 1\nboot 2\n");
    engine.send("login: ");
    ASSERT_TRUE(eventually([&] {
        std::lock_guard lock(mutex);
        return live == "login: ";
    }));
    EXPECT_EQ(console.tail(2), "boot 2\nlogin: ");
    console.unsubscribe(reader);
}

TEST(VmConsoleTest, FirstTypingReaderOwnsTheInput) {
    ConsoleSocket engine;
    VmConsole console;
    console.attach(engine.path());
    engine.accept_client();
    std::string ignored;
    uint64_t first = console.subscribe([](std::string_view) {}, ignored);
    uint64_t second = console.subscribe([](std::string_view) {}, ignored);
    ASSERT_TRUE(eventually([&] { return console.write_input(first, "ls\n") == VmConsole::Input::Queued; }));
    EXPECT_EQ(console.write_input(second, "rm -rf /\n"), VmConsole::Input::Refused);
    EXPECT_EQ(engine.receive(3), "ls\n");
    console.unsubscribe(first);
    EXPECT_EQ(console.write_input(second, "id\n"), VmConsole::Input::Queued);
    EXPECT_EQ(engine.receive(3), "id\n");
}

TEST(VmConsoleTest, KeepsTheScrollbackAfterTheEngineHangsUp) {
    ConsoleSocket engine;
    VmConsole console;
    console.attach(engine.path());
    engine.accept_client();
    engine.send("Kernel panic - not syncing\n");
    ASSERT_TRUE(eventually([&] { return !console.tail(1).empty(); }));
    engine.hang_up();
    std::string scrollback;
    uint64_t reader = console.subscribe([](std::string_view) {}, scrollback);
    // Once the engine is gone there is nobody to type to.
    EXPECT_TRUE(eventually([&] { return console.write_input(reader, "x") == VmConsole::Input::Offline; }));
    console.detach();
    EXPECT_EQ(console.tail(5), "Kernel panic - not syncing\n");
}

// A guest's last lines ("CORRAL-INIT: poweroff", the kernel's "reboot: Power down") arrive just
// before the VM ends, when corrald detaches the console. They are kept, not dropped with the
// connection. To have them wait in the socket at that moment, a reader holds the relay thread.
TEST(VmConsoleTest, KeepsWhatTheEngineWroteJustBeforeTheDetach) {
    ConsoleSocket engine;
    VmConsole console;
    console.attach(engine.path());
    engine.accept_client();
    std::mutex mutex;
    std::condition_variable changed;
    bool holding = false, released = false;
    std::string scrollback;
    uint64_t reader = console.subscribe(
        [&](std::string_view) {
            std::unique_lock lock(mutex);
            if (released) return;
            holding = true;
            changed.notify_all();
            changed.wait(lock, [&] { return released; });
        },
        scrollback);
    engine.send("shutting down\n");
    {
        std::unique_lock lock(mutex);
        ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(10), [&] { return holding; }));
    }
    engine.send("last words\n");
    std::thread detaching([&] { console.detach(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the stop is signalled by then
    {
        std::lock_guard lock(mutex);
        released = true;
    }
    changed.notify_all();
    detaching.join();
    console.unsubscribe(reader);
    EXPECT_EQ(console.tail(5), "shutting down\nlast words\n");
}

TEST(VmConsoleTest, ConnectsAgainWhenTheEngineDropsTheClient) {
    ConsoleSocket engine;
    VmConsole console;
    console.attach(engine.path());
    engine.accept_client();
    engine.send("first boot\n");
    ASSERT_TRUE(eventually([&] { return console.tail(1) == "first boot\n"; }));
    engine.drop_client();
    engine.accept_client();  // blocks until the console connected again
    engine.send("second boot\n");
    ASSERT_TRUE(eventually([&] { return console.tail(1) == "second boot\n"; }));
    EXPECT_EQ(console.tail(5), "first boot\nsecond boot\n");
}

TEST(VmConsoleTest, ScrollbackIsBounded) {
    ConsoleSocket engine;
    VmConsole console;
    console.attach(engine.path());
    engine.accept_client();
    std::string chunk(4096, 'x');
    chunk.back() = '\n';
    for (int i = 0; i < 40; ++i) engine.send(chunk);
    engine.send("last\n");
    ASSERT_TRUE(eventually([&] { return console.tail(1) == "last\n"; }));
    std::string scrollback;
    console.subscribe([](std::string_view) {}, scrollback);
    EXPECT_EQ(scrollback.size(), VmConsole::k_scrollback_bytes);
}

TEST(VmConsoleTest, InputAGuestDoesNotReadIsDroppedNeverBlocking) {
    ConsoleSocket engine;
    VmConsole console;
    console.attach(engine.path());
    engine.accept_client();  // and never reads: a paused guest
    std::string ignored;
    uint64_t typist = console.subscribe([](std::string_view) {}, ignored);
    const std::string chunk(4096, 'p');
    ASSERT_TRUE(eventually([&] { return console.write_input(typist, chunk) == VmConsole::Input::Queued; }));
    // The socket's buffer fills, then the queue: from then on input is dropped, at once.
    VmConsole::Input result = VmConsole::Input::Queued;
    size_t queued = chunk.size();
    for (int i = 0; i < 100000 && result != VmConsole::Input::Full; ++i) {
        result = console.write_input(typist, chunk);
        if (result == VmConsole::Input::Queued) queued += chunk.size();
        if (result == VmConsole::Input::Queued && i % 64 == 0)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));  // let the relay move it along
    }
    EXPECT_EQ(result, VmConsole::Input::Full);
    // Meanwhile nothing that takes the console's lock waits for the guest.
    std::string scrollback;
    uint64_t other = console.subscribe([](std::string_view) {}, scrollback);
    EXPECT_EQ(console.tail(5), "");
    console.unsubscribe(other);
    // What was queued reaches the guest, in order, once it reads.
    EXPECT_EQ(engine.receive(queued), std::string(queued, 'p'));
}

TEST(VmConsoleTest, KeepsTheEnginesConsoleLogBounded) {
    ConsoleSocket engine;
    const auto log = engine.path().parent_path() / "console.log";
    ASSERT_TRUE(engine::create_console_log(log));
    VmConsole console;
    console.attach(engine.path(), {}, log);
    engine.accept_client();
    // The engine writes every byte to its log (O_APPEND, as QEMU's logappend=on) and the socket.
    int writer = ::open(log.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    ASSERT_GE(writer, 0);
    std::string chunk(64 * 1024, 'x');
    chunk.back() = '\n';
    const size_t total = 3 * engine::k_console_log_max_bytes;
    uint64_t largest = 0;
    for (size_t sent = 0; sent < total; sent += chunk.size()) {
        ASSERT_EQ(::write(writer, chunk.data(), chunk.size()), ssize_t(chunk.size()));
        engine.send(chunk);
        largest = std::max<uint64_t>(largest, std::filesystem::file_size(log));
    }
    engine.send("last\n");
    ASSERT_TRUE(eventually([&] { return console.tail(1) == "last\n"; }));
    ::close(writer);
    auto rotated = log;
    rotated += ".1";
    EXPECT_TRUE(std::filesystem::exists(rotated));
    EXPECT_LE(std::filesystem::file_size(rotated), engine::k_console_log_max_bytes);
    EXPECT_LE(std::filesystem::file_size(log), engine::k_console_log_max_bytes + 2 * chunk.size());
    EXPECT_LT(largest, total);
}

}  // namespace
}  // namespace corral::daemon
