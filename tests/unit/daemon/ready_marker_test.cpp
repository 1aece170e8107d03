// ReadyMarker: what `backup verify --boot` recognises on a console, and what it quotes when the
// ready line never comes.
#include "daemon/ready_marker.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

ReadyMarker marker(const std::string& pattern = k_default_ready_pattern) {
    auto made = ReadyMarker::make(pattern);
    EXPECT_TRUE(made) << made.error().describe();
    return std::move(*made);
}

TEST(ReadyMarker, TheGuestInitsLineMatchesEvenSplitAcrossReads) {
    auto m = marker();
    EXPECT_FALSE(m.feed("[    1.0] virtio_blk virtio1: [vda]\r\nCORRAL-INIT: root /dev/vda\r\nCORRAL-IN"));
    EXPECT_TRUE(m.feed("IT: up\r\n"));
    EXPECT_TRUE(m.ready());
}

TEST(ReadyMarker, ALoginPromptWithoutANewlineMatches) {
    auto m = marker();
    EXPECT_FALSE(m.feed("Debian GNU/Linux 12 web ttyS0\r\n\r\n"));
    EXPECT_TRUE(m.feed("web login: "));
}

TEST(ReadyMarker, AFailedRootIsNotReadyAndIsQuoted) {
    auto m = marker();
    EXPECT_FALSE(
        m.feed("CORRAL-INIT: root /dev/vda failed: mount: mounting /dev/vda on /newroot failed\r\n"
               "CORRAL-INIT: shell\r\n\x1b[?2004hcorral:~# "));
    const std::string last = m.last_lines(2);
    EXPECT_EQ(last.find('\x1b'), std::string::npos) << "escape characters are stripped";
    EXPECT_NE(last.find("CORRAL-INIT: shell | [?2004hcorral:~# "), std::string::npos) << last;
    EXPECT_EQ(m.last_lines(1), "[?2004hcorral:~# ");
}

TEST(ReadyMarker, AUsersPatternAndBadOnes) {
    auto m = marker("^READY [0-9]+$");
    EXPECT_FALSE(m.feed("NOT READY 1\nREADY x\n"));
    EXPECT_TRUE(m.feed("READY 42\n"));
    EXPECT_FALSE(ReadyMarker::make("(unclosed"));
    EXPECT_FALSE(ReadyMarker::make(""));
    EXPECT_FALSE(ReadyMarker::make(std::string(201, 'a')));
    EXPECT_FALSE(ReadyMarker::make("(a)\\1")) << "back-references are refused";
}

TEST(ReadyMarker, APatternThatWouldBacktrackForeverIsMatchedAtOnce) {
    // (a*)*b against a line of a's takes exponential time with a backtracking matcher.
    auto m = marker("(a*)*b");
    EXPECT_FALSE(m.feed(std::string(1000, 'a') + "\n"));
    EXPECT_TRUE(m.feed(std::string(1000, 'a') + "b\n"));
}

TEST(ReadyMarker, LongLinesAreCut) {
    auto m = marker("x{2000}");
    EXPECT_FALSE(m.feed(std::string(5000, 'x') + "\n"));
    EXPECT_EQ(m.last_lines(1).size(), ReadyMarker::k_max_line);
}

}  // namespace
}  // namespace corral::daemon
