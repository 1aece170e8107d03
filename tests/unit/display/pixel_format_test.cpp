#include "display/pixel_format.h"

#include <gtest/gtest.h>

namespace corral::display {
namespace {

// One pixel: B=0x10, G=0x80, R=0xff.
const std::vector<std::uint8_t> k_pixel = {0x10, 0x80, 0xff, 0x00};

TEST(PixelFormat, NativeFormatCopiesThePixels) {
    std::vector<std::uint8_t> out;
    convert_pixels(k_pixel, PixelFormat::native(), out);
    EXPECT_EQ(out, k_pixel);
}

TEST(PixelFormat, BigEndianWithOtherShifts) {
    PixelFormat format;
    format.big_endian = true;
    format.red_shift = 0;
    format.green_shift = 8;
    format.blue_shift = 16;
    ASSERT_TRUE(format.validate());
    std::vector<std::uint8_t> out;
    convert_pixels(k_pixel, format, out);
    // value 0x001080ff, most significant byte first
    EXPECT_EQ(out, (std::vector<std::uint8_t>{0x00, 0x10, 0x80, 0xff}));
}

TEST(PixelFormat, NoVncsRgbxFormat) {
    PixelFormat format;  // noVNC: 32 bpp little-endian, red at bit 0, blue at bit 16
    format.red_shift = 0;
    format.blue_shift = 16;
    std::vector<std::uint8_t> out;
    convert_pixels(k_pixel, format, out);
    EXPECT_EQ(out, (std::vector<std::uint8_t>{0xff, 0x80, 0x10, 0x00}));
    format.big_endian = true;
    out.clear();
    convert_pixels(k_pixel, format, out);
    EXPECT_EQ(out, (std::vector<std::uint8_t>{0x00, 0x10, 0x80, 0xff}));
}

TEST(PixelFormat, SixteenBitsRgb565LittleEndian) {
    PixelFormat format{.bits_per_pixel = 16, .depth = 16, .big_endian = false, .true_colour = true,
                       .red_max = 31, .green_max = 63, .blue_max = 31, .red_shift = 11, .green_shift = 5,
                       .blue_shift = 0};
    ASSERT_TRUE(format.validate());
    std::vector<std::uint8_t> out;
    convert_pixels(k_pixel, format, out);
    // red 31, green round(128*63/255)=32, blue round(16*31/255)=2: 0xfc02
    EXPECT_EQ(out, (std::vector<std::uint8_t>{0x02, 0xfc}));
}

TEST(PixelFormat, EightBitsBgr233) {
    PixelFormat format{.bits_per_pixel = 8, .depth = 8, .big_endian = false, .true_colour = true,
                       .red_max = 7, .green_max = 7, .blue_max = 3, .red_shift = 0, .green_shift = 3,
                       .blue_shift = 6};
    ASSERT_TRUE(format.validate());
    std::vector<std::uint8_t> out;
    convert_pixels(k_pixel, format, out);
    EXPECT_EQ(out, (std::vector<std::uint8_t>{static_cast<std::uint8_t>(7 | 4 << 3 | 0 << 6)}));
}

TEST(PixelFormat, ColourMapsAndOddFormatsAreRefusedWithTheReason) {
    PixelFormat colour_map;
    colour_map.true_colour = false;
    auto result = colour_map.validate();
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("colour-map"), std::string::npos);

    PixelFormat bpp24;
    bpp24.bits_per_pixel = 24;
    EXPECT_FALSE(bpp24.validate());

    PixelFormat overflow;
    overflow.bits_per_pixel = 16;  // red at shift 16 does not fit 16 bits
    EXPECT_FALSE(overflow.validate());

    PixelFormat zero_max;
    zero_max.green_max = 0;
    EXPECT_FALSE(zero_max.validate());

    PixelFormat not_mask;
    not_mask.blue_max = 200;
    EXPECT_FALSE(not_mask.validate());
}

TEST(PixelFormat, WireEncodingRoundTrips) {
    PixelFormat format{.bits_per_pixel = 16, .depth = 15, .big_endian = true, .true_colour = true,
                       .red_max = 31, .green_max = 31, .blue_max = 31, .red_shift = 10, .green_shift = 5,
                       .blue_shift = 0};
    const auto bytes = format.encode();
    EXPECT_EQ(PixelFormat::decode(bytes), format);
}

TEST(PixelFormat, TightPixelsAreRgbBytes) {
    std::vector<std::uint8_t> out;
    convert_pixels_rgb24(k_pixel, out);
    EXPECT_EQ(out, (std::vector<std::uint8_t>{0xff, 0x80, 0x10}));
}

}  // namespace
}  // namespace corral::display
