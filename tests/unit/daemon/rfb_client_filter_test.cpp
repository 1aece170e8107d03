#include "daemon/rfb_client_filter.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

using namespace std::string_literals;

const std::string k_handshake = "RFB 003.008\n"s + "\x01"s + "\x01"s;  // version, security None, shared
const std::string k_set_pixel_format = "\x00"s + std::string(19, '\x01');
const std::string k_set_encodings = "\x02\x00\x00\x02"s + "\x00\x00\x00\x00"s + "\xff\xff\xff\x21"s;
const std::string k_update_request = "\x03\x01\x00\x00\x00\x00\x04\x00\x03\x00"s;
const std::string k_key_down_a = "\x04\x01\x00\x00\x00\x00\x00\x61"s;
const std::string k_pointer = "\x05\x01\x00\x10\x00\x20"s;
const std::string k_cut_text = "\x06\x00\x00\x00\x00\x00\x00\x03"s + "abc";
const std::string k_qemu_key = "\xff\x00\x00\x01\x00\x00\x00\x61\x00\x00\x00\x1e"s;

TEST(RfbClientFilter, PassesEverythingKnownWhenNotViewOnly) {
    RfbClientFilter filter(false);
    const std::string all =
        k_handshake + k_set_pixel_format + k_set_encodings + k_update_request + k_key_down_a + k_pointer + k_cut_text + k_qemu_key;
    EXPECT_EQ(filter.feed(all).value(), all);
    EXPECT_EQ(filter.dropped(), 0u);
}

TEST(RfbClientFilter, ViewOnlyDropsInputAndKeepsTheRest) {
    RfbClientFilter filter(true);
    const std::string passed = k_handshake + k_set_pixel_format + k_set_encodings + k_update_request;
    const auto out = filter.feed(k_handshake + k_set_pixel_format + k_key_down_a + k_set_encodings + k_pointer +
                                 k_cut_text + k_qemu_key + k_update_request);
    ASSERT_TRUE(out.has_value()) << out.error().message();
    EXPECT_EQ(*out, passed);
    EXPECT_EQ(filter.dropped(), 4u);
}

TEST(RfbClientFilter, MessagesSplitAnywhereComeOutWhole) {
    RfbClientFilter filter(true);
    const std::string stream = k_handshake + k_set_encodings + k_key_down_a + k_update_request;
    const std::string expected = k_handshake + k_set_encodings + k_update_request;
    std::string out;
    // One byte at a time: nothing of a message passes before its last byte, and a dropped one never does.
    for (size_t i = 0; i < stream.size(); ++i) {
        const auto piece = filter.feed(stream.substr(i, 1));
        ASSERT_TRUE(piece.has_value());
        out += *piece;
        EXPECT_TRUE(expected.starts_with(out));
        // Whole messages only: the output ends where a message of the input ended.
        if (i + 1 == k_handshake.size() + k_set_encodings.size() - 1) {
            EXPECT_EQ(out, k_handshake);
        }
    }
    EXPECT_EQ(out, expected);
}

TEST(RfbClientFilter, Rfb33HasNoSecurityChoice) {
    RfbClientFilter filter(true);
    const std::string stream = "RFB 003.003\n"s + "\x01"s + k_key_down_a + k_update_request;
    EXPECT_EQ(filter.feed(stream).value(), "RFB 003.003\n"s + "\x01"s + k_update_request);
}

// noVNC's answer to QEMU's ExtendedClipboard capabilities: ClientCutText with length -8 and its
// 8 bytes (flags: caps + text, and the text size limit). It passes, and is dropped when view-only.
TEST(RfbClientFilter, ExtendedClipboardHasANegativeLength) {
    const std::string caps = "\x06\x00\x00\x00\xff\xff\xff\xf8"s + "\x1f\x00\x00\x01\x00\x00\x27\x10"s;
    EXPECT_EQ(RfbClientFilter(false).feed(k_handshake + caps + k_update_request).value(),
              k_handshake + caps + k_update_request);
    EXPECT_EQ(RfbClientFilter(true).feed(k_handshake + caps + k_update_request).value(), k_handshake + k_update_request);
    EXPECT_FALSE(RfbClientFilter(false).feed(k_handshake + "\x06\x00\x00\x00\x80\x00\x00\x00"s).has_value());
}

TEST(RfbClientFilter, UnknownOrOversizedMessagesEndTheConnection) {
    EXPECT_FALSE(RfbClientFilter(false).feed(k_handshake + "\x07"s).has_value());
    EXPECT_FALSE(RfbClientFilter(false).feed(k_handshake + "\xff\x07"s).has_value());
    EXPECT_FALSE(RfbClientFilter(false).feed("HTTP/1.1 200\n"s).has_value());
    EXPECT_FALSE(RfbClientFilter(false).feed("RFB 003.008\n"s + "\x10"s).has_value());  // security type 16
    const auto huge = RfbClientFilter(false).feed(k_handshake + "\x06\x00\x00\x00\x7f\xff\xff\xff"s);
    ASSERT_FALSE(huge.has_value());
    EXPECT_NE(huge.error().message().find("clipboard"), std::string::npos);
}

}  // namespace
}  // namespace corral::daemon
