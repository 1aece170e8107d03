#include "vmm/console/stdio_console.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace corral::vmm {
namespace {

constexpr uint8_t k_escape_key = 0x01;  // Ctrl-A
constexpr uint8_t k_quit_key = 'x';

}  // namespace

Result<StdioConsole> StdioConsole::open() {
    StdioConsole console;
    if (::isatty(STDIN_FILENO)) {
        termios saved{};
        if (::tcgetattr(STDIN_FILENO, &saved) < 0) return fail_errno("tcgetattr on stdin");
        termios raw = saved;
        ::cfmakeraw(&raw);
        raw.c_oflag |= OPOST | ONLCR;  // keep our own log lines readable
        if (::tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0) return fail_errno("tcsetattr on stdin");
        console.m_saved_terminal = saved;
    }
    int flags = ::fcntl(STDIN_FILENO, F_GETFL);
    if (flags < 0) {
        console.m_input_open = false;  // no stdin at all
    } else {
        ::fcntl(STDIN_FILENO, F_SETFL, flags | O_NONBLOCK);
    }
    return console;
}

StdioConsole::StdioConsole(StdioConsole&& other) noexcept
    : m_input_open(other.m_input_open),
      m_escape_pending(other.m_escape_pending),
      m_saved_terminal(std::exchange(other.m_saved_terminal, std::nullopt)) {}

StdioConsole::~StdioConsole() {
    if (m_saved_terminal) ::tcsetattr(STDIN_FILENO, TCSANOW, &*m_saved_terminal);
}

StdioConsole::InputStatus StdioConsole::read_input(std::span<uint8_t> buffer, size_t& length) {
    length = 0;
    ssize_t n = ::read(STDIN_FILENO, buffer.data(), buffer.size());
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        m_input_open = false;
        return InputStatus::EndOfFile;
    }
    if (n < 0) return InputStatus::Data;
    if (!m_saved_terminal) {  // not a terminal: pass everything through
        length = static_cast<size_t>(n);
        return InputStatus::Data;
    }
    for (ssize_t i = 0; i < n; ++i) {
        uint8_t byte = buffer[static_cast<size_t>(i)];
        if (m_escape_pending) {
            m_escape_pending = false;
            if (byte == k_quit_key) return InputStatus::QuitRequested;
            if (byte != k_escape_key) continue;  // unknown escape: swallow it
        } else if (byte == k_escape_key) {
            m_escape_pending = true;
            continue;
        }
        buffer[length++] = byte;
    }
    return InputStatus::Data;
}

void StdioConsole::write_output(std::span<const uint8_t> bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
            // stdout may share stdin's open file description, which is non-blocking.
            pollfd writable{STDOUT_FILENO, POLLOUT, 0};
            if (::poll(&writable, 1, 1000) > 0) continue;
            return;
        }
        if (n <= 0) return;  // stdout closed: the guest keeps running without a console
        bytes = bytes.subspan(static_cast<size_t>(n));
    }
}

}  // namespace corral::vmm
