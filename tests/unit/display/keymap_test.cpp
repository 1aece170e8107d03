#include "display/keymap.h"

#include <gtest/gtest.h>
#include <linux/input-event-codes.h>

#include <string>

namespace corral::display {
namespace {

TEST(Keymap, AsciiKeysymsMapToUsKeysWithTheirShiftState) {
    EXPECT_EQ(keysym_to_linux('a').code, KEY_A);
    EXPECT_EQ(keysym_to_linux('a').shift, ShiftNeed::Unshifted);
    EXPECT_EQ(keysym_to_linux('A').code, KEY_A);
    EXPECT_EQ(keysym_to_linux('A').shift, ShiftNeed::Shifted);
    EXPECT_EQ(keysym_to_linux('!').code, KEY_1);
    EXPECT_EQ(keysym_to_linux('!').shift, ShiftNeed::Shifted);
    EXPECT_EQ(keysym_to_linux('0').code, KEY_0);
    EXPECT_EQ(keysym_to_linux('~').code, KEY_GRAVE);
    EXPECT_EQ(keysym_to_linux('|').code, KEY_BACKSLASH);
    EXPECT_EQ(keysym_to_linux('"').code, KEY_APOSTROPHE);
    EXPECT_EQ(keysym_to_linux(' ').code, KEY_SPACE);
}

TEST(Keymap, EveryPrintableAsciiKeysymHasAKey) {
    for (std::uint32_t c = 0x20; c <= 0x7e; ++c) {
        EXPECT_NE(keysym_to_linux(c).code, 0) << "keysym " << c;
    }
}

TEST(Keymap, SpecialKeysymsMapWhateverTheShift) {
    EXPECT_EQ(keysym_to_linux(0xff0d).code, KEY_ENTER);
    EXPECT_EQ(keysym_to_linux(0xff0d).shift, ShiftNeed::Any);
    EXPECT_EQ(keysym_to_linux(0xffff).code, KEY_DELETE);
    EXPECT_EQ(keysym_to_linux(0xffe3).code, KEY_LEFTCTRL);
    EXPECT_EQ(keysym_to_linux(0xffe9).code, KEY_LEFTALT);
    EXPECT_EQ(keysym_to_linux(0xffbe).code, KEY_F1);
    EXPECT_EQ(keysym_to_linux(0xffc9).code, KEY_F12);
    EXPECT_EQ(keysym_to_linux(0xff52).code, KEY_UP);
    EXPECT_EQ(keysym_to_linux(0xffb5).code, KEY_KP5);
}

TEST(Keymap, UnknownKeysymsHaveNoKey) {
    EXPECT_EQ(keysym_to_linux(0).code, 0);
    EXPECT_EQ(keysym_to_linux(0xe9).code, 0);  // e acute: not on a US keyboard
    EXPECT_EQ(keysym_to_linux(0x1000000).code, 0);
}

TEST(Keymap, PlainScancodesAreLinuxCodes) {
    EXPECT_EQ(xt_scancode_to_linux(0x01), KEY_ESC);
    EXPECT_EQ(xt_scancode_to_linux(0x1e), KEY_A);
    EXPECT_EQ(xt_scancode_to_linux(0x2a), KEY_LEFTSHIFT);
    EXPECT_EQ(xt_scancode_to_linux(0x58), KEY_F12);
    EXPECT_EQ(xt_scancode_to_linux(0x56), KEY_102ND);  // the ISO key between Shift and Z
    EXPECT_EQ(xt_scancode_to_linux(0x73), KEY_RO);
    EXPECT_EQ(xt_scancode_to_linux(0x00), 0);
}

TEST(Keymap, ExtendedScancodesInBothSpellings) {
    // 0x80|byte is what noVNC and QEMU put on the wire; 0xE0xx is accepted too.
    EXPECT_EQ(xt_scancode_to_linux(0xc8), KEY_UP);
    EXPECT_EQ(xt_scancode_to_linux(0xe048), KEY_UP);
    EXPECT_EQ(xt_scancode_to_linux(0x9d), KEY_RIGHTCTRL);
    EXPECT_EQ(xt_scancode_to_linux(0xb8), KEY_RIGHTALT);
    EXPECT_EQ(xt_scancode_to_linux(0xd3), KEY_DELETE);
    EXPECT_EQ(xt_scancode_to_linux(0xdb), KEY_LEFTMETA);
    EXPECT_EQ(xt_scancode_to_linux(0x9c), KEY_KPENTER);
    EXPECT_EQ(xt_scancode_to_linux(0xb5), KEY_KPSLASH);
}

TEST(Keymap, UnknownScancodesHaveNoKey) {
    EXPECT_EQ(xt_scancode_to_linux(0xff), 0);
    EXPECT_EQ(xt_scancode_to_linux(0x12345), 0);
    EXPECT_EQ(xt_scancode_to_linux(0xe0ff), 0);
    EXPECT_EQ(xt_scancode_to_linux(0xffffffff), 0);
}

}  // namespace
}  // namespace corral::display
