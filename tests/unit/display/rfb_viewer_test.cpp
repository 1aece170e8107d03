#include "display/rfb_viewer.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <random>

namespace corral::display::rfb {
namespace {

class CountingSink final : public InputSink {
public:
    void key(std::uint16_t, bool) override { ++keys; }
    void pointer(std::uint32_t x, std::uint32_t y, std::uint32_t width, std::uint32_t height,
                 std::uint8_t) override {
        EXPECT_LT(x, width);
        EXPECT_LT(y, height);
        ++pointers;
    }
    int keys = 0;
    int pointers = 0;
};

struct Connection {
    Connection() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
        server = UniqueFd(fds[0]);
        peer = UniqueFd(fds[1]);
    }
    UniqueFd server;
    UniqueFd peer;
};

const std::vector<std::uint8_t> k_handshake = [] {
    std::vector<std::uint8_t> bytes = {'R', 'F', 'B', ' ', '0', '0', '3', '.', '0', '0', '8', '\n'};
    bytes.push_back(1);  // security None
    bytes.push_back(1);  // shared
    return bytes;
}();

TEST(RfbViewer, RandomMessagesAfterTheHandshakeNeverCrashAndEndClosedOrOpen) {
    std::mt19937 random(6143);
    Framebuffer fb(64, 48);
    for (int round = 0; round < 2000; ++round) {
        Connection connection;
        CountingSink sink;
        Viewer viewer(std::move(connection.server), ViewerAccess::Full, fb, &sink, "test");
        viewer.handle_input(k_handshake);
        ASSERT_FALSE(viewer.closed()) << viewer.close_reason();
        std::vector<std::uint8_t> bytes(random() % 64);
        for (auto& byte : bytes) byte = static_cast<std::uint8_t>(random());
        // Mostly valid message types, so that their bodies' garbage is exercised too.
        if (!bytes.empty()) bytes[0] = static_cast<std::uint8_t>(random() % 8);
        // In pieces of random size, as a socket delivers them.
        std::size_t at = 0;
        while (at < bytes.size() && !viewer.closed()) {
            const std::size_t piece = std::min<std::size_t>(1 + random() % 8, bytes.size() - at);
            viewer.handle_input(std::span(bytes).subspan(at, piece));
            at += piece;
        }
    }
}

TEST(RfbViewer, AViewOnlyViewerReachesNoInput) {
    Framebuffer fb(64, 48);
    Connection connection;
    CountingSink sink;
    Viewer viewer(std::move(connection.server), ViewerAccess::ViewOnly, fb, &sink, "test");
    viewer.handle_input(k_handshake);
    const std::vector<std::uint8_t> input = {4, 1, 0, 0, 0, 0, 0, 'a', 5, 1, 0, 1, 0, 1,
                                             255, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x1e};
    viewer.handle_input(input);
    EXPECT_FALSE(viewer.closed()) << viewer.close_reason();
    EXPECT_EQ(sink.keys, 0);
    EXPECT_EQ(sink.pointers, 0);
}

TEST(RfbViewer, ACutTextIsSkippedAcrossReads) {
    Framebuffer fb(64, 48);
    Connection connection;
    CountingSink sink;
    Viewer viewer(std::move(connection.server), ViewerAccess::Full, fb, &sink, "test");
    viewer.handle_input(k_handshake);
    viewer.handle_input(std::vector<std::uint8_t>{6, 0, 0, 0, 0, 0, 0, 10, 'h', 'e', 'l'});
    // The rest of the text holds a byte that would be a KeyEvent: it must be skipped as text.
    viewer.handle_input(std::vector<std::uint8_t>{4, 'o', ' ', 'w', 'o', 'r', 'l'});
    EXPECT_EQ(sink.keys, 0);
    viewer.handle_input(std::vector<std::uint8_t>{4, 1, 0, 0, 0, 0, 0, 'a'});
    EXPECT_EQ(sink.keys, 1);
    EXPECT_FALSE(viewer.closed());
}

}  // namespace
}  // namespace corral::display::rfb
