#include "display/framebuffer.h"

#include <gtest/gtest.h>

#include <vector>

namespace corral::display {
namespace {

std::vector<std::uint8_t> solid(std::uint32_t width, std::uint32_t height, std::uint8_t value) {
    return std::vector<std::uint8_t>(std::size_t{width} * height * 4, value);
}

TEST(Framebuffer, AReaderSeesOnlyTheTilesChangedSinceItsSerial) {
    Framebuffer fb(256, 128);
    const auto start = fb.changes_since(0, fb.generation());
    EXPECT_TRUE(start.rects.empty());
    ASSERT_TRUE(fb.update({70, 10, 10, 1}, solid(10, 1, 7), 40));
    const auto first = fb.changes_since(start.serial, start.generation);
    ASSERT_EQ(first.rects.size(), 1u);
    EXPECT_EQ(first.rects[0].x, 64u);
    EXPECT_EQ(first.rects[0].y, 0u);
    EXPECT_EQ(first.rects[0].width, 64u);
    EXPECT_EQ(first.rects[0].height, 64u);
    // Nothing new for a reader that saw that change; a second reader still sees it.
    EXPECT_TRUE(fb.changes_since(first.serial, first.generation).rects.empty());
    EXPECT_EQ(fb.changes_since(start.serial, start.generation).rects.size(), 1u);
    std::vector<std::uint8_t> pixels;
    fb.read({70, 10, 2, 1}, pixels);
    EXPECT_EQ(pixels, std::vector<std::uint8_t>(8, 7));
}

TEST(Framebuffer, ChangedTilesInARowMergeIntoOneRectangleClippedToTheScreen) {
    Framebuffer fb(100, 70);
    ASSERT_TRUE(fb.update({0, 65, 100, 1}, solid(100, 1, 1), 400));
    const auto changes = fb.changes_since(0, fb.generation());
    ASSERT_EQ(changes.rects.size(), 1u);
    EXPECT_EQ(changes.rects[0].x, 0u);
    EXPECT_EQ(changes.rects[0].y, 64u);
    EXPECT_EQ(changes.rects[0].width, 100u);
    EXPECT_EQ(changes.rects[0].height, 6u);
}

TEST(Framebuffer, AResizeSendsReadersOfTheOldGenerationTheWholeScreen) {
    Framebuffer fb(64, 64);
    const auto before = fb.changes_since(0, fb.generation());
    fb.resize(128, 96);
    const auto after = fb.changes_since(before.serial, before.generation);
    EXPECT_NE(after.generation, before.generation);
    ASSERT_EQ(after.rects.size(), 1u);
    EXPECT_EQ(after.rects[0].width, 128u);
    EXPECT_EQ(after.rects[0].height, 96u);
    EXPECT_EQ(after.width, 128u);
}

TEST(Framebuffer, AShortSourceIsRefusedAndChangesNothing) {
    Framebuffer fb(64, 64);
    EXPECT_FALSE(fb.update({0, 0, 10, 10}, solid(10, 9, 1), 40));
    EXPECT_TRUE(fb.changes_since(0, fb.generation()).rects.empty());
}

TEST(Framebuffer, TheChangeListenerHearsEveryUpdateAndResize) {
    Framebuffer fb(64, 64);
    int calls = 0;
    fb.set_change_listener([&] { ++calls; });
    ASSERT_TRUE(fb.update({0, 0, 1, 1}, solid(1, 1, 1), 4));
    fb.resize(70, 70);
    EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace corral::display
