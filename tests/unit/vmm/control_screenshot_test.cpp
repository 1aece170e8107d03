#include "vmm/control/screenshot.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "display/framebuffer.h"

namespace corral::vmm {
namespace {

TEST(Screenshot, Base64MatchesRfc4648) {
    auto encode = [](std::string text) {
        return base64_encode(reinterpret_cast<const unsigned char*>(text.data()), text.size());
    };
    EXPECT_EQ(encode(""), "");
    EXPECT_EQ(encode("f"), "Zg==");
    EXPECT_EQ(encode("fo"), "Zm8=");
    EXPECT_EQ(encode("foo"), "Zm9v");
    EXPECT_EQ(encode("foob"), "Zm9vYg==");
    EXPECT_EQ(encode("fooba"), "Zm9vYmE=");
    EXPECT_EQ(encode("foobar"), "Zm9vYmFy");
    unsigned char high[] = {0xFB, 0xFF, 0xBF};
    EXPECT_EQ(base64_encode(high, 3), "+/+/");
}

TEST(Screenshot, WithoutADisplayTheAnswerSaysSo) {
    auto answer = nlohmann::json::parse(screenshot_answer(nullptr));
    EXPECT_EQ(answer["ok"], false);
    EXPECT_EQ(answer["error"], "this VM has no display (start it with --display)");
}

TEST(Screenshot, AnswerHasTheSizeAndAPng) {
    display::Framebuffer framebuffer(800, 600);
    auto answer = nlohmann::json::parse(screenshot_answer(&framebuffer));
    ASSERT_EQ(answer["ok"], true) << answer.dump();
    EXPECT_EQ(answer["width"], 800);
    EXPECT_EQ(answer["height"], 600);
    // "\x89PNG\r\n\x1a\n" in base64 starts with "iVBORw0KGgo".
    EXPECT_EQ(answer["png_base64"].get<std::string>().rfind("iVBORw0KGgo", 0), 0u);
}

}  // namespace
}  // namespace corral::vmm
