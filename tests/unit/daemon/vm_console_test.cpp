#include "daemon/vm_console.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

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
    ASSERT_TRUE(eventually([&] { return console.write_input(first, "ls\n"); }));
    EXPECT_FALSE(console.write_input(second, "rm -rf /\n"));
    EXPECT_EQ(engine.receive(3), "ls\n");
    console.unsubscribe(first);
    EXPECT_TRUE(console.write_input(second, "id\n"));
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
    EXPECT_TRUE(eventually([&] { return !console.write_input(reader, "x"); }));
    console.detach();
    EXPECT_EQ(console.tail(5), "Kernel panic - not syncing\n");
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

}  // namespace
}  // namespace corral::daemon
