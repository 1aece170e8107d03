#include "base/utf8.h"

#include <gtest/gtest.h>

namespace corral {
namespace {

const std::string k_fffd = "\xEF\xBF\xBD";

TEST(Utf8Test, KeepsValidTextAsItIs) {
    for (std::string text : std::initializer_list<std::string>{"", "plain ascii", "caf\xC3\xA9", "\xE2\x82\xAC 5", "\xF0\x9F\x90\x84 moo",
                             std::string("nul\0inside", 10), "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF"}) {
        EXPECT_TRUE(is_valid_utf8(text)) << text;
        EXPECT_EQ(sanitize_utf8(text), text);
    }
}

TEST(Utf8Test, ReplacesEachInvalidByte) {
    EXPECT_EQ(sanitize_utf8("a\xFF" "b"), "a" + k_fffd + "b");
    EXPECT_EQ(sanitize_utf8("\x80\x80"), k_fffd + k_fffd);
    EXPECT_EQ(sanitize_utf8("\xC0\xAF"), k_fffd + k_fffd);              // overlong '/'
    EXPECT_EQ(sanitize_utf8("\xED\xA0\x80"), k_fffd + k_fffd + k_fffd);  // a surrogate
    EXPECT_EQ(sanitize_utf8("\xF4\x90\x80\x80"), k_fffd + k_fffd + k_fffd + k_fffd);  // above U+10FFFF
    EXPECT_FALSE(is_valid_utf8("\xFF"));
    EXPECT_FALSE(is_valid_utf8("\xE0\x80\x80"));
}

TEST(Utf8Test, TruncatedSequenceIsOneReplacementAndTheNextByteIsKept) {
    // Unicode §3.9 "maximal subpart": E2 82 is a valid start that broke off.
    EXPECT_EQ(sanitize_utf8("\xE2\x82" "A"), k_fffd + "A");
    EXPECT_EQ(sanitize_utf8("x\xF0\x9F\x90"), "x" + k_fffd);
    // The byte that broke a sequence starts the next character when it can.
    EXPECT_EQ(sanitize_utf8("\xE2\xC3\xA9"), k_fffd + "\xC3\xA9");
}

TEST(Utf8Test, EveryByteValueGivesValidText) {
    std::string all;
    for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
    std::string clean = sanitize_utf8(all);
    EXPECT_TRUE(is_valid_utf8(clean));
    EXPECT_EQ(clean.substr(0, 128), all.substr(0, 128));
    EXPECT_EQ(sanitize_utf8(clean), clean);
}

}  // namespace
}  // namespace corral
