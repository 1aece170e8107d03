#include "display/rfb_messages.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

namespace corral::display::rfb {
namespace {

using Status = ParseResult::Status;

std::vector<std::uint8_t> valid_messages() {
    std::vector<std::uint8_t> all;
    const auto format = PixelFormat::native().encode();
    all.insert(all.end(), {0, 0, 0, 0});
    all.insert(all.end(), format.begin(), format.end());
    all.insert(all.end(), {2, 0, 0, 2, 0, 0, 0, 7, 0xff, 0xff, 0xff, 0x21});        // Tight, DesktopSize
    all.insert(all.end(), {3, 1, 0, 1, 0, 2, 0, 3, 0, 4});                          // update request
    all.insert(all.end(), {4, 1, 0, 0, 0, 0, 0, 'a'});                              // key
    all.insert(all.end(), {5, 3, 0, 10, 0, 20});                                    // pointer
    all.insert(all.end(), {6, 0, 0, 0, 0, 0, 0, 5});                                // cut text header
    all.insert(all.end(), {255, 0, 0, 1, 0, 0, 0, 'a', 0, 0, 0, 0x1e});             // extended key
    all.insert(all.end(), {251, 0, 4, 0, 3, 0, 1, 0});                              // SetDesktopSize
    all.insert(all.end(), 16, 0);                                                   // its one screen
    return all;
}

TEST(RfbMessages, EachMessageDecodes) {
    const auto all = valid_messages();
    std::span<const std::uint8_t> rest(all);
    std::vector<ClientMessage> messages;
    while (!rest.empty()) {
        const ParseResult result = parse_client_message(rest);
        ASSERT_EQ(result.status, Status::Complete) << result.error;
        messages.push_back(result.message);
        rest = rest.subspan(result.consumed);
    }
    ASSERT_EQ(messages.size(), 8u);
    EXPECT_TRUE(std::get<SetPixelFormat>(messages[0]).format.is_native());
    EXPECT_EQ(std::get<SetEncodings>(messages[1]).encodings, (std::vector<std::int32_t>{7, -223}));
    const auto request = std::get<UpdateRequest>(messages[2]);
    EXPECT_TRUE(request.incremental);
    EXPECT_EQ(request.x, 1);
    EXPECT_EQ(request.height, 4);
    EXPECT_EQ(std::get<KeyEvent>(messages[3]).keysym, 'a');
    EXPECT_EQ(std::get<PointerEvent>(messages[4]).buttons, 3);
    EXPECT_EQ(std::get<PointerEvent>(messages[4]).y, 20);
    EXPECT_EQ(std::get<CutText>(messages[5]).length, 5u);
    EXPECT_EQ(std::get<ExtendedKeyEvent>(messages[6]).scancode, 0x1eu);
    EXPECT_TRUE(std::get<ExtendedKeyEvent>(messages[6]).down);
    EXPECT_EQ(std::get<SetDesktopSize>(messages[7]).width, 1024);
}

TEST(RfbMessages, EveryTruncatedMessageAsksForMore) {
    const auto all = valid_messages();
    std::span<const std::uint8_t> rest(all);
    while (!rest.empty()) {
        const std::size_t size = parse_client_message(rest).consumed;
        for (std::size_t cut = 0; cut < size; ++cut) {
            EXPECT_EQ(parse_client_message(rest.first(cut)).status, Status::NeedMore)
                << "message type " << int(rest[0]) << " cut at " << cut;
        }
        rest = rest.subspan(size);
    }
}

TEST(RfbMessages, UnknownOrOversizedMessagesAreInvalid) {
    const std::vector<std::uint8_t> unknown = {9, 0, 0, 0};
    EXPECT_EQ(parse_client_message(unknown).status, Status::Invalid);
    const std::vector<std::uint8_t> too_many = {2, 0, 0xff, 0xff};
    const ParseResult result = parse_client_message(too_many);
    EXPECT_EQ(result.status, Status::Invalid);
    EXPECT_NE(result.error.find("65535 encodings"), std::string::npos) << result.error;
    const std::vector<std::uint8_t> qemu_audio = {255, 1, 0, 0};
    EXPECT_EQ(parse_client_message(qemu_audio).status, Status::Invalid);
}

TEST(RfbMessages, GarbageNeverReadsPastTheBuffer) {
    std::mt19937 random(16);
    for (int round = 0; round < 20000; ++round) {
        std::vector<std::uint8_t> bytes(random() % 40);
        for (auto& byte : bytes) byte = static_cast<std::uint8_t>(random());
        if (!bytes.empty() && round % 2 == 0) bytes[0] = static_cast<std::uint8_t>(random() % 7);
        const ParseResult result = parse_client_message(bytes);
        if (result.status == Status::Complete) {
            EXPECT_LE(result.consumed, bytes.size());
            EXPECT_GT(result.consumed, 0u);
        }
    }
}

TEST(RfbMessages, ProtocolVersions) {
    auto version = [](const char* text) {
        std::array<std::uint8_t, 12> bytes{};
        std::memcpy(bytes.data(), text, 12);
        return parse_protocol_version(bytes);
    };
    EXPECT_EQ(version("RFB 003.008\n"), 8);
    EXPECT_EQ(version("RFB 003.889\n"), 8);  // Apple's
    EXPECT_EQ(version("RFB 003.007\n"), 7);
    EXPECT_EQ(version("RFB 003.003\n"), 3);
    EXPECT_EQ(version("RFB 003.005\n"), 3);  // unknown 3.x: 3.3 (RFC 6143 §7.1.1)
    EXPECT_EQ(version("RFB 004.000\n"), std::nullopt);
    EXPECT_EQ(version("GET / HTTP/1"), std::nullopt);
    EXPECT_EQ(version("RFB 003.0x8\n"), std::nullopt);
}

}  // namespace
}  // namespace corral::display::rfb
