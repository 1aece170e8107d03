#pragma once

#include <functional>
#include <memory>

#include "vmm/console/socket_console.h"
#include "vmm/devices/virtio/console/console_device.h"

namespace corral::vmm {

/// A SocketConsole's client as the input of a virtio-console port: the listening socket and
/// the current client are watched on the device's event loop; a new connection replaces the
/// client (as for the serial console's socket). Loop thread only, except watch()/unwatch().
class SocketConsoleInput final : public virtio::ConsoleInput {
public:
    explicit SocketConsoleInput(std::shared_ptr<SocketConsole> socket) : m_socket(std::move(socket)) {}
    ~SocketConsoleInput() override { unwatch(); }

    Result<void> watch(EventLoop& loop, std::function<void()> ready) override;
    void unwatch() override;
    void set_paused(bool paused) override;
    size_t read(std::span<uint8_t> buffer) override;

private:
    void on_connection();
    /// Watches the current client unless paused or already watched.
    void watch_client();
    void unwatch_client();

    std::shared_ptr<SocketConsole> m_socket;
    EventLoop* m_loop = nullptr;  // set while watching
    std::function<void()> m_ready;
    bool m_paused = false;
    int m_watched_client = -1;
};

}  // namespace corral::vmm
