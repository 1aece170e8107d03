#include "cli/console.h"

#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <iostream>
#include <thread>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/api_client.h"
#include "cli/render.h"

namespace corral::cli {

namespace {

/// The terminal settings to put back; global so a fatal signal's handler can restore them.
termios g_saved_termios;
std::atomic<bool> g_termios_saved{false};

void restore_terminal() {
    if (g_termios_saved.exchange(false)) tcsetattr(STDIN_FILENO, TCSAFLUSH, &g_saved_termios);
}

extern "C" void restore_and_reraise(int signal_number) {
    restore_terminal();
    std::signal(signal_number, SIG_DFL);
    raise(signal_number);
}

/// Raw mode for the life of the object; also restored by atexit and on SIGTERM/SIGHUP/SIGQUIT,
/// so no exit path leaves the user's terminal raw.
class RawTerminal {
public:
    RawTerminal() {
        if (tcgetattr(STDIN_FILENO, &g_saved_termios) != 0) return;
        termios raw = g_saved_termios;
        cfmakeraw(&raw);
        g_termios_saved = true;
        std::atexit(restore_terminal);
        for (int signal_number : {SIGTERM, SIGHUP, SIGQUIT, SIGINT}) std::signal(signal_number, restore_and_reraise);
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw);
    }
    ~RawTerminal() { restore_terminal(); }
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;
};

bool write_all(int fd, const char* data, std::size_t size) {
    while (size > 0) {
        const ssize_t n = write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

/// A pipe whose write end wakes the stdin reader when the session ends first.
struct StopPipe {
    int fds[2] = {-1, -1};
    StopPipe() {
        if (pipe(fds) != 0) fds[0] = fds[1] = -1;
    }
    ~StopPipe() {
        for (int fd : fds)
            if (fd >= 0) close(fd);
    }
    void signal() {
        if (fds[1] >= 0) (void)!write(fds[1], "x", 1);
    }
};

}  // namespace

int run_console(const Endpoint& endpoint, const std::string& vm, const std::string& target) {
    auto session = WebSocketSession::connect(endpoint, target);
    if (!session) {
        std::cerr << format_error(session.error(), vm) << '\n';
        return exit_code_for(session.error());
    }
    const bool tty = isatty(STDIN_FILENO) != 0;
    if (tty) std::cerr << fmt::format("Connected to {}'s console; Ctrl-] detaches\r\n", vm) << std::flush;
    std::optional<RawTerminal> raw;
    if (tty) raw.emplace();

    std::atomic<bool> detached{false};
    StopPipe stop;
    WebSocketSession& ws = **session;
    // Reads stdin on its own thread (stdin may be a tty, a pipe or a file: poll works on all).
    std::thread reader([&] {
        char buffer[4096];
        for (;;) {
            pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {stop.fds[0], POLLIN, 0}};
            if (poll(fds, 2, -1) < 0) {
                if (errno == EINTR) continue;
                break;
            }
            if (fds[1].revents != 0) return;
            const ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                // stdin ended: give the console a moment to answer what was sent, then close.
                ws.close(std::chrono::milliseconds(500));
                return;
            }
            std::string data(buffer, static_cast<std::size_t>(n));
            if (tty) {
                if (const auto escape = data.find(k_detach_key); escape != std::string::npos) {
                    data.resize(escape);
                    if (!data.empty()) ws.send(std::move(data));
                    detached = true;
                    ws.close();
                    return;
                }
            }
            ws.send(std::move(data));
        }
    });

    // Binary frames are the guest's bytes; a text frame is corrald speaking (input dropped), on stderr.
    // corrald's first text frame comes right after the scroll-back: the detach hint goes there,
    // where the replay cannot scroll it out of sight.
    bool hinted = !tty;
    auto result = ws.run([&hinted](std::string_view data, bool binary) {
        if (binary) {
            write_all(STDOUT_FILENO, data.data(), data.size());
            return;
        }
        const std::string line =
            fmt::format("\r\n[{}{}]\r\n", data, std::exchange(hinted, true) ? "" : "; Ctrl-] detaches");
        write_all(STDERR_FILENO, line.data(), line.size());
    });
    stop.signal();
    reader.join();
    raw.reset();
    if (tty) std::cerr << (detached ? fmt::format("\nDetached from {}'s console\n", vm)
                                    : fmt::format("\n{}'s console closed\n", vm));
    if (!result) {
        std::cerr << format_error(result.error(), vm) << '\n';
        return exit_code_for(result.error());
    }
    return 0;
}

int run_events(const Endpoint& endpoint, const std::string& target, bool json) {
    auto session = WebSocketSession::connect(endpoint, target);
    if (!session) {
        std::cerr << format_error(session.error(), "") << '\n';
        return exit_code_for(session.error());
    }
    auto result = (*session)->run([json](std::string_view data, bool) {
        if (json) {
            std::cout << data << '\n' << std::flush;
            return;
        }
        const auto event = nlohmann::json::parse(data, nullptr, false);
        if (!event.is_object()) {
            std::cout << escape_guest_text(data) << '\n' << std::flush;
            return;
        }
        auto field = [&](const char* key) {
            return event.contains(key) && event[key].is_string() ? event[key].get<std::string>() : std::string();
        };
        std::string line = field("time");
        auto add = [&](const std::string& part) {
            if (part.empty()) return;
            if (!line.empty()) line += ' ';
            line += part;
        };
        add(field("kind"));
        if (event.contains("task") && event["task"].is_object()) {
            const auto& task = event["task"];
            add(task.value("id", "") + " " + task.value("kind", "") + " " + task.value("target", "") + " " +
                task.value("status", ""));
        }
        add(field("target"));
        add(field("state"));
        if (const std::string reason = field("reason"); !reason.empty()) add("(" + reason + ")");
        // Reasons can quote what a VM printed: shown inert like `vm show` does.
        std::cout << escape_guest_text(line) << '\n' << std::flush;
    });
    if (!result) {
        std::cerr << format_error(result.error(), "") << '\n';
        return exit_code_for(result.error());
    }
    // The stream has no end of its own (Ctrl-C ends corral by its signal): corrald closed it, so it
    // stopped or restarted. A script watching events must not take that for a clean finish.
    std::cerr << "corral: corrald closed the event stream (it stopped or restarted); events from now on are not "
                 "shown. Run 'corral events' again once corrald is back.\n";
    return 3;
}

}  // namespace corral::cli
