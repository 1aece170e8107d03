#include "display/png.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <string>

namespace corral::display {
namespace {

std::uint32_t be32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} << 24 | std::uint32_t{p[1]} << 16 | std::uint32_t{p[2]} << 8 | p[3];
}

struct Chunk {
    std::string type;
    std::vector<std::uint8_t> data;
};

// Splits a PNG into its chunks, checking the signature and every CRC.
std::vector<Chunk> chunks_of(const std::vector<std::uint8_t>& png) {
    const std::uint8_t signature[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    EXPECT_GE(png.size(), 8u);
    EXPECT_EQ(std::memcmp(png.data(), signature, 8), 0);
    std::vector<Chunk> chunks;
    std::size_t pos = 8;
    while (pos + 12 <= png.size()) {
        const std::uint32_t length = be32(&png[pos]);
        EXPECT_LE(pos + 12 + length, png.size());
        if (pos + 12 + length > png.size()) break;
        Chunk chunk{std::string(reinterpret_cast<const char*>(&png[pos + 4]), 4),
                    std::vector<std::uint8_t>(png.begin() + pos + 8, png.begin() + pos + 8 + length)};
        EXPECT_EQ(be32(&png[pos + 8 + length]), crc32(0, &png[pos + 4], length + 4)) << chunk.type;
        chunks.push_back(std::move(chunk));
        pos += 12 + length;
    }
    EXPECT_EQ(pos, png.size());
    return chunks;
}

TEST(Png, TheScreenRoundTripsThroughZlib) {
    Framebuffer fb(5, 3);
    std::vector<std::uint8_t> bgrx(5 * 3 * 4);
    for (std::size_t i = 0; i < 15; ++i) {
        bgrx[i * 4] = static_cast<std::uint8_t>(i);           // blue
        bgrx[i * 4 + 1] = static_cast<std::uint8_t>(100 + i); // green
        bgrx[i * 4 + 2] = static_cast<std::uint8_t>(200 + i); // red
        bgrx[i * 4 + 3] = 0xee;                               // padding, not in the PNG
    }
    ASSERT_TRUE(fb.update({0, 0, 5, 3}, bgrx, 20));
    auto png = encode_png(fb);
    ASSERT_TRUE(png) << png.error().message();
    const auto chunks = chunks_of(*png);
    ASSERT_EQ(chunks.size(), 3u);
    EXPECT_EQ(chunks[0].type, "IHDR");
    EXPECT_EQ(chunks[1].type, "IDAT");
    EXPECT_EQ(chunks[2].type, "IEND");
    ASSERT_EQ(chunks[0].data.size(), 13u);
    EXPECT_EQ(be32(&chunks[0].data[0]), 5u);
    EXPECT_EQ(be32(&chunks[0].data[4]), 3u);
    EXPECT_EQ(chunks[0].data[8], 8);  // bit depth
    EXPECT_EQ(chunks[0].data[9], 2);  // RGB
    std::vector<std::uint8_t> raw(3 * (1 + 5 * 3));
    uLongf raw_size = raw.size();
    ASSERT_EQ(uncompress(raw.data(), &raw_size, chunks[1].data.data(), chunks[1].data.size()), Z_OK);
    ASSERT_EQ(raw_size, raw.size());
    for (std::size_t y = 0; y < 3; ++y) {
        EXPECT_EQ(raw[y * 16], 0);  // filter None
        for (std::size_t x = 0; x < 5; ++x) {
            const std::size_t i = y * 5 + x;
            EXPECT_EQ(raw[y * 16 + 1 + x * 3], 200 + i);
            EXPECT_EQ(raw[y * 16 + 2 + x * 3], 100 + i);
            EXPECT_EQ(raw[y * 16 + 3 + x * 3], i);
        }
    }
}

TEST(Png, PixelsOfTheWrongSizeAreRefused) {
    auto png = encode_png_bgrx(4, 4, std::vector<std::uint8_t>(63));
    ASSERT_FALSE(png);
    EXPECT_EQ(png.error().kind(), ErrorKind::Invalid);
    EXPECT_FALSE(encode_png_bgrx(0, 4, {}));
}

}  // namespace
}  // namespace corral::display
