// A VNC server over a known picture, for the display tests and bench/display: it serves a
// Framebuffer through display::RfbServer, changes it on commands read from stdin, and prints
// every key and pointer event the server passes on (one line each, flushed), so a test can
// drive real viewers (vncsnapshot, tests/lib/rfb_client.py) and check what they did.
//
//   rfb_test_server --socket PATH [--view-only-socket PATH] [--tcp] [--size WxH]
//
// --tcp also listens on 127.0.0.1 (a free port, printed as "TCP <port>") and hands each
// connection to RfbServer::add_client: vncsnapshot only speaks TCP.
// Commands (each answered "OK <command>"): pattern | fill R G B | rect X Y W H R G B |
// line Y R G B | noise (random pixels) | resize W H | viewers | quit.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "display/framebuffer.h"
#include "display/input_sink.h"
#include "display/rfb_server.h"

using namespace corral;
using namespace corral::display;

namespace {

std::mutex g_output;

void say(const std::string& line) {
    std::lock_guard lock(g_output);
    std::fputs((line + "\n").c_str(), stdout);
    std::fflush(stdout);
}

class PrintingSink final : public InputSink {
public:
    void key(std::uint16_t code, bool down) override {
        say("KEY " + std::to_string(code) + (down ? " down" : " up"));
    }
    void pointer(std::uint32_t x, std::uint32_t y, std::uint32_t width, std::uint32_t height,
                 std::uint8_t buttons) override {
        say("POINTER " + std::to_string(x) + " " + std::to_string(y) + " " + std::to_string(width) + " " +
            std::to_string(height) + " " + std::to_string(buttons));
    }
};

void fill_rect(Framebuffer& fb, Rect rect, int r, int g, int b) {
    std::vector<std::uint8_t> pixels(std::size_t{rect.width} * rect.height * 4);
    for (std::size_t i = 0; i < pixels.size(); i += 4) {
        pixels[i] = static_cast<std::uint8_t>(b);
        pixels[i + 1] = static_cast<std::uint8_t>(g);
        pixels[i + 2] = static_cast<std::uint8_t>(r);
        pixels[i + 3] = 0;
    }
    fb.update(rect, pixels, std::size_t{rect.width} * 4);
}

// A 4 x 4 grid of distinct colours (tests/lib/rfb_client.py's pattern_colour() computes the same).
void draw_pattern(Framebuffer& fb) {
    const std::uint32_t width = fb.width();
    const std::uint32_t height = fb.height();
    for (std::uint32_t row = 0; row < 4; ++row) {
        for (std::uint32_t column = 0; column < 4; ++column) {
            const std::uint32_t index = row * 4 + column;
            const Rect cell{column * width / 4, row * height / 4, (column + 1) * width / 4 - column * width / 4,
                            (row + 1) * height / 4 - row * height / 4};
            fill_rect(fb, cell, (index & 1) ? 255 : (index & 8 ? 128 : 0), (index & 2) ? 255 : 0,
                      (index & 4) ? 255 : (index & 8 ? 64 : 0));
        }
    }
}

bool parse_size(const std::string& text, std::uint32_t& width, std::uint32_t& height) {
    return std::sscanf(text.c_str(), "%ux%u", &width, &height) == 2;
}


// Runs one stdin command; false for `quit`.
bool run_command(const std::string& line, Framebuffer& fb, RfbServer& server) {
    std::istringstream in(line);
    std::string command;
    in >> command;
    if (command == "quit") {
        return false;
    } else if (command == "pattern") {
        draw_pattern(fb);
    } else if (command == "fill") {
        int r = 0, g = 0, b = 0;
        in >> r >> g >> b;
        fill_rect(fb, {0, 0, fb.width(), fb.height()}, r, g, b);
    } else if (command == "rect") {
        std::uint32_t x = 0, y = 0, w = 0, h = 0;
        int r = 0, g = 0, b = 0;
        in >> x >> y >> w >> h >> r >> g >> b;
        fill_rect(fb, {x, y, w, h}, r, g, b);
    } else if (command == "noise") {
        // Pseudo-random pixels: the worst case for every encoding, new ones each time.
        static std::uint64_t state = 0x2545f4914f6cdd1dull;
        const std::uint32_t width = fb.width();
        const std::uint32_t height = fb.height();
        std::vector<std::uint8_t> pixels(std::size_t{width} * height * 4);
        for (std::size_t i = 0; i < pixels.size(); i += 4) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            std::memcpy(&pixels[i], &state, 4);
        }
        fb.update({0, 0, width, height}, pixels, std::size_t{width} * 4);
    } else if (command == "line") {
        std::uint32_t y = 0;
        int r = 0, g = 0, b = 0;
        in >> y >> r >> g >> b;
        fill_rect(fb, {0, y, fb.width(), 1}, r, g, b);
    } else if (command == "resize") {
        std::uint32_t w = 0, h = 0;
        in >> w >> h;
        fb.resize(w, h);
        draw_pattern(fb);
    } else if (command == "viewers") {
        say("VIEWERS " + std::to_string(server.viewer_count()));
        return true;
    } else if (!command.empty()) {
        say("ERROR unknown command " + command);
        return true;
    }
    if (!command.empty()) say("OK " + command);
    return true;
}

}  // namespace

int main(int argc, char** argv) {
    RfbServer::Options options;
    options.name = "rfb-test";
    bool tcp = false;
    std::uint32_t width = 640;
    std::uint32_t height = 480;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--socket" && i + 1 < argc) {
            options.socket_path = argv[++i];
        } else if (arg == "--view-only-socket" && i + 1 < argc) {
            options.view_only_socket_path = argv[++i];
        } else if (arg == "--tcp") {
            tcp = true;
        } else if (arg == "--size" && i + 1 < argc && parse_size(argv[i + 1], width, height)) {
            ++i;
        } else {
            std::cerr << "usage: rfb_test_server --socket PATH [--view-only-socket PATH] [--tcp] [--size WxH]\n";
            return 2;
        }
    }
    auto fb = std::make_shared<Framebuffer>(width, height);
    draw_pattern(*fb);
    PrintingSink sink;
    auto server = RfbServer::start(fb, &sink, options);
    if (!server) {
        std::cerr << "rfb_test_server: " << server.error().describe() << "\n";
        return 1;
    }
    UniqueFd listener;
    if (tcp) {
        listener = UniqueFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t length = sizeof address;
        if (!listener.valid() || ::bind(listener.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
            ::listen(listener.get(), 8) != 0 ||
            ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
            std::perror("rfb_test_server: tcp listen");
            return 1;
        }
        say("TCP " + std::to_string(ntohs(address.sin_port)));
    }
    say("READY");
    // stdin is read with read(2) and split here: a stream's buffer would hide a second command
    // that arrived with the first from poll().
    std::string input;
    bool running = true;
    while (running) {
        pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {listener.get(), POLLIN, 0}};
        if (::poll(fds, listener.valid() ? 2 : 1, -1) < 0) continue;
        if (listener.valid() && (fds[1].revents & POLLIN)) {
            const int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
            if (fd >= 0) (*server)->add_client(UniqueFd(fd), ViewerAccess::Full);
        }
        if (!(fds[0].revents & (POLLIN | POLLHUP))) continue;
        char buffer[4096];
        const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
        if (n <= 0) break;
        input.append(buffer, static_cast<std::size_t>(n));
        std::size_t end;
        while (running && (end = input.find('\n')) != std::string::npos) {
            const std::string line = input.substr(0, end);
            input.erase(0, end + 1);
            running = run_command(line, *fb, **server);
        }
    }
    return 0;
}
