#include "vmm/devices/virtio/console/console_device.h"

#include <gtest/gtest.h>
#include <sys/eventfd.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "base/event_fd.h"
#include "virtio_test_driver.h"
#include "vmm/console/socket_console_input.h"

namespace corral::vmm::virtio {
namespace {

using testing::RecordingInterrupt;
using testing::TestRing;

constexpr uint64_t k_buffers = 0x40000;

class ConsoleDeviceTest : public ::testing::Test {
protected:
    void activate(bool with_transmit = true) {
        std::vector<std::optional<ActiveQueue>> queues(2);
        queues[0].emplace(ActiveQueue{Virtqueue::create(memory, rx.layout(), {}).value(), rx_notify.fd()});
        if (with_transmit)
            queues[1].emplace(ActiveQueue{Virtqueue::create(memory, tx.layout(), {}).value(), tx_notify.fd()});
        result = device.activate(ActivateContext{memory, k_f_version_1, std::move(queues), interrupt});
    }
    void put_text(uint64_t address, const std::string& text) {
        memory.write(address, std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size())).value();
    }

    GuestMemory memory = GuestMemory::create(1 << 20).value();
    TestRing rx{memory, 8, 0x1000, 0x2000, 0x3000};
    TestRing tx{memory, 8, 0x5000, 0x6000, 0x7000};
    EventFd rx_notify = EventFd::create(EFD_NONBLOCK).value();
    EventFd tx_notify = EventFd::create(EFD_NONBLOCK).value();
    std::shared_ptr<EventLoop> loop = EventLoop::start("console-test").value();
    RecordingInterrupt interrupt;
    std::string output;
    ConsoleDevice device{loop, [this](std::span<const uint8_t> bytes) { output.append(bytes.begin(), bytes.end()); }};
    Result<void> result;
};

TEST_F(ConsoleDeviceTest, TransmitsToTheOutputSink) {
    put_text(k_buffers, "hello-");
    put_text(k_buffers + 0x100, "hvc\n");
    tx.descriptor(0, k_buffers, 6, k_desc_f_next, 1);
    tx.descriptor(1, k_buffers + 0x100, 4, 0);
    tx.publish(0);
    activate();
    ASSERT_TRUE(result);
    EXPECT_EQ(output, "hello-hvc\n");
    EXPECT_EQ(tx.used_idx(), 1);
    EXPECT_EQ(tx.used_element(0), std::make_pair(0u, 0u));
    EXPECT_EQ(interrupt.queue_signals, std::vector<uint16_t>{ConsoleDevice::k_transmit_queue});
    auto counters = device.counters();
    EXPECT_EQ(counters.requests, 1u);
    EXPECT_EQ(counters.bytes, 10u);
    EXPECT_EQ(rx.used_idx(), 0) << "no input: the receive queue is left alone";
}

TEST_F(ConsoleDeviceTest, ConfigSpaceSaysOnePort) {
    std::array<uint8_t, 12> config{};
    device.read_config(0, config);
    EXPECT_EQ(config[4], 1) << "max_nr_ports";
    EXPECT_EQ(config[0], 0);
}

TEST_F(ConsoleDeviceTest, NeedsTheTransmitQueue) {
    activate(/*with_transmit=*/false);
    EXPECT_FALSE(result.has_value());
}

TEST_F(ConsoleDeviceTest, MalformedChainsAreCountedNotPrinted) {
    tx.descriptor(0, 0xFFFFF000, 64, 0);  // outside RAM
    tx.publish(0);
    activate();
    EXPECT_EQ(output, "");
    EXPECT_EQ(device.counters().rejected_chains, 1u);
}

/// Host input from a string, handed out in reads of at most `chunk` bytes.
class StringInput final : public ConsoleInput {
public:
    StringInput(std::string text, size_t chunk) : m_text(std::move(text)), m_chunk(chunk) {}
    Result<void> watch(EventLoop&, std::function<void()>) override { return {}; }
    void unwatch() override {}
    void set_paused(bool paused) override {
        this->paused = paused;
        ++pause_changes;
    }
    size_t read(std::span<uint8_t> buffer) override {
        size_t n = std::min({buffer.size(), m_chunk, m_text.size() - m_at});
        std::memcpy(buffer.data(), m_text.data() + m_at, n);
        m_at += n;
        return n;
    }
    bool paused = false;
    int pause_changes = 0;

private:
    std::string m_text;
    size_t m_chunk;
    size_t m_at = 0;
};

class ConsoleInputTest : public ConsoleDeviceTest {
protected:
    std::string received(uint64_t address, uint32_t length) {
        return std::string(reinterpret_cast<const char*>(memory.host_pointer(address, length)), length);
    }
};

TEST_F(ConsoleInputTest, HostInputFillsReceiveBuffersAsAStream) {
    auto input = std::make_unique<StringInput>("hello guest\n", 5);
    StringInput* source = input.get();
    ConsoleDevice with_input{loop, [](std::span<const uint8_t>) {}, std::move(input)};
    rx.descriptor(0, k_buffers, 3, k_desc_f_write);  // smaller than a read: the rest goes in the next
    rx.publish(0);
    rx.descriptor(1, k_buffers + 0x100, 64, k_desc_f_write);
    rx.publish(1);
    std::vector<std::optional<ActiveQueue>> queues(2);
    queues[0].emplace(ActiveQueue{Virtqueue::create(memory, rx.layout(), {}).value(), rx_notify.fd()});
    queues[1].emplace(ActiveQueue{Virtqueue::create(memory, tx.layout(), {}).value(), tx_notify.fd()});
    ASSERT_TRUE(with_input.activate(ActivateContext{memory, k_f_version_1, std::move(queues), interrupt}));
    ASSERT_EQ(rx.used_idx(), 2);
    EXPECT_EQ(rx.used_element(0), std::make_pair(0u, 3u));
    EXPECT_EQ(rx.used_element(1), std::make_pair(1u, 2u));
    EXPECT_EQ(received(k_buffers, 3) + received(k_buffers + 0x100, 2), "hello");
    EXPECT_TRUE(source->paused) << "no buffer left: input is paused, not read and lost";
    EXPECT_EQ(interrupt.queue_signals, std::vector<uint16_t>{ConsoleDevice::k_receive_queue});

    rx.descriptor(2, k_buffers + 0x200, 64, k_desc_f_write);
    rx.publish(2);
    rx.descriptor(3, k_buffers + 0x300, 64, k_desc_f_write);
    rx.publish(3);
    rx_notify.signal();  // the guest added buffers: input resumes
    for (int i = 0; i < 400 && rx.used_idx() < 4; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_EQ(rx.used_idx(), 4);
    EXPECT_EQ(received(k_buffers + 0x200, rx.used_element(2).second) +
                  received(k_buffers + 0x300, rx.used_element(3).second),
              " guest\n");
    EXPECT_FALSE(source->paused);
    EXPECT_EQ(with_input.counters().bytes, 12u);
    with_input.reset();
}

TEST_F(ConsoleInputTest, SocketClientInputReachesTheGuestAndAReconnectWorks) {
    std::string dir = std::filesystem::temp_directory_path() / ("hvc-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::string path = dir + "/hvc.sock";
    std::shared_ptr<SocketConsole> socket = SocketConsole::listen(path, "--virtio-console").value();
    ConsoleDevice with_socket{loop, [socket](std::span<const uint8_t> bytes) { socket->write_output(bytes); },
                              std::make_unique<SocketConsoleInput>(socket)};
    for (uint16_t i = 0; i < 4; ++i) {
        rx.descriptor(i, k_buffers + 0x100 * i, 64, k_desc_f_write);
        rx.publish(i);
    }
    std::vector<std::optional<ActiveQueue>> queues(2);
    queues[0].emplace(ActiveQueue{Virtqueue::create(memory, rx.layout(), {}).value(), rx_notify.fd()});
    queues[1].emplace(ActiveQueue{Virtqueue::create(memory, tx.layout(), {}).value(), tx_notify.fd()});
    ASSERT_TRUE(with_socket.activate(ActivateContext{memory, k_f_version_1, std::move(queues), interrupt}));

    auto connect_and_send = [&](const std::string& text) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
        EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
        EXPECT_EQ(::send(fd, text.data(), text.size(), 0), static_cast<ssize_t>(text.size()));
        return fd;
    };
    auto wait_used = [&](uint16_t count) {
        for (int i = 0; i < 400 && rx.used_idx() < count; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
        return rx.used_idx() >= count;
    };
    int first = connect_and_send("line-one\n");
    ASSERT_TRUE(wait_used(1));
    EXPECT_EQ(received(k_buffers, rx.used_element(0).second), "line-one\n");
    ::close(first);  // the client goes away; a new one takes its place
    int second = connect_and_send("line-two\n");
    ASSERT_TRUE(wait_used(2));
    EXPECT_EQ(received(k_buffers + 0x100, rx.used_element(1).second), "line-two\n");
    ::close(second);
    with_socket.reset();
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace corral::vmm::virtio
