#include "display/keymap.h"

#include <linux/input-event-codes.h>

#include <array>

namespace corral::display {

namespace {

struct AsciiKey {
    std::uint16_t code;
    bool shifted;
};

// US layout for ASCII 0x20..0x7e.
constexpr std::array<AsciiKey, 95> k_ascii = {{
    {KEY_SPACE, false},      // ' '
    {KEY_1, true},           // !
    {KEY_APOSTROPHE, true},  // "
    {KEY_3, true},           // #
    {KEY_4, true},           // $
    {KEY_5, true},           // %
    {KEY_7, true},           // &
    {KEY_APOSTROPHE, false}, // '
    {KEY_9, true},           // (
    {KEY_0, true},           // )
    {KEY_8, true},           // *
    {KEY_EQUAL, true},       // +
    {KEY_COMMA, false},      // ,
    {KEY_MINUS, false},      // -
    {KEY_DOT, false},        // .
    {KEY_SLASH, false},      // /
    {KEY_0, false},          // 0
    {KEY_1, false},          // 1
    {KEY_2, false},          // 2
    {KEY_3, false},          // 3
    {KEY_4, false},          // 4
    {KEY_5, false},          // 5
    {KEY_6, false},          // 6
    {KEY_7, false},          // 7
    {KEY_8, false},          // 8
    {KEY_9, false},          // 9
    {KEY_SEMICOLON, true},   // :
    {KEY_SEMICOLON, false},  // ;
    {KEY_COMMA, true},       // <
    {KEY_EQUAL, false},      // =
    {KEY_DOT, true},         // >
    {KEY_SLASH, true},       // ?
    {KEY_2, true},           // @
    {KEY_A, true}, {KEY_B, true}, {KEY_C, true}, {KEY_D, true}, {KEY_E, true}, {KEY_F, true},
    {KEY_G, true}, {KEY_H, true}, {KEY_I, true}, {KEY_J, true}, {KEY_K, true}, {KEY_L, true},
    {KEY_M, true}, {KEY_N, true}, {KEY_O, true}, {KEY_P, true}, {KEY_Q, true}, {KEY_R, true},
    {KEY_S, true}, {KEY_T, true}, {KEY_U, true}, {KEY_V, true}, {KEY_W, true}, {KEY_X, true},
    {KEY_Y, true}, {KEY_Z, true},
    {KEY_LEFTBRACE, false},  // [
    {KEY_BACKSLASH, false},  // backslash
    {KEY_RIGHTBRACE, false}, // ]
    {KEY_6, true},           // ^
    {KEY_MINUS, true},       // _
    {KEY_GRAVE, false},      // `
    {KEY_A, false}, {KEY_B, false}, {KEY_C, false}, {KEY_D, false}, {KEY_E, false}, {KEY_F, false},
    {KEY_G, false}, {KEY_H, false}, {KEY_I, false}, {KEY_J, false}, {KEY_K, false}, {KEY_L, false},
    {KEY_M, false}, {KEY_N, false}, {KEY_O, false}, {KEY_P, false}, {KEY_Q, false}, {KEY_R, false},
    {KEY_S, false}, {KEY_T, false}, {KEY_U, false}, {KEY_V, false}, {KEY_W, false}, {KEY_X, false},
    {KEY_Y, false}, {KEY_Z, false},
    {KEY_LEFTBRACE, true},   // {
    {KEY_BACKSLASH, true},   // |
    {KEY_RIGHTBRACE, true},  // }
    {KEY_GRAVE, true},       // ~
}};

struct KeysymKey {
    std::uint32_t keysym;
    std::uint16_t code;
};

// Keysyms of <X11/keysymdef.h> outside ASCII, typed the same with or without Shift.
constexpr KeysymKey k_special[] = {
    {0xff08, KEY_BACKSPACE}, {0xff09, KEY_TAB}, {0xfe20, KEY_TAB} /* ISO_Left_Tab (Shift+Tab) */,
    {0xff0d, KEY_ENTER}, {0xff13, KEY_PAUSE}, {0xff14, KEY_SCROLLLOCK}, {0xff15, KEY_SYSRQ},
    {0xff1b, KEY_ESC}, {0xffff, KEY_DELETE},
    {0xff50, KEY_HOME}, {0xff51, KEY_LEFT}, {0xff52, KEY_UP}, {0xff53, KEY_RIGHT}, {0xff54, KEY_DOWN},
    {0xff55, KEY_PAGEUP}, {0xff56, KEY_PAGEDOWN}, {0xff57, KEY_END},
    {0xff61, KEY_SYSRQ} /* Print */, {0xff63, KEY_INSERT}, {0xff67, KEY_COMPOSE} /* Menu */,
    {0xff7f, KEY_NUMLOCK},
    {0xff8d, KEY_KPENTER}, {0xffaa, KEY_KPASTERISK}, {0xffab, KEY_KPPLUS}, {0xffac, KEY_KPCOMMA},
    {0xffad, KEY_KPMINUS}, {0xffae, KEY_KPDOT}, {0xffaf, KEY_KPSLASH}, {0xffbd, KEY_KPEQUAL},
    {0xffb0, KEY_KP0}, {0xffb1, KEY_KP1}, {0xffb2, KEY_KP2}, {0xffb3, KEY_KP3}, {0xffb4, KEY_KP4},
    {0xffb5, KEY_KP5}, {0xffb6, KEY_KP6}, {0xffb7, KEY_KP7}, {0xffb8, KEY_KP8}, {0xffb9, KEY_KP9},
    // Keypad keys with Num Lock off.
    {0xff95, KEY_KP7}, {0xff96, KEY_KP4}, {0xff97, KEY_KP8}, {0xff98, KEY_KP6}, {0xff99, KEY_KP2},
    {0xff9a, KEY_KP9}, {0xff9b, KEY_KP3}, {0xff9c, KEY_KP1}, {0xff9d, KEY_KP5}, {0xff9e, KEY_KP0},
    {0xff9f, KEY_KPDOT},
    {0xffbe, KEY_F1}, {0xffbf, KEY_F2}, {0xffc0, KEY_F3}, {0xffc1, KEY_F4}, {0xffc2, KEY_F5},
    {0xffc3, KEY_F6}, {0xffc4, KEY_F7}, {0xffc5, KEY_F8}, {0xffc6, KEY_F9}, {0xffc7, KEY_F10},
    {0xffc8, KEY_F11}, {0xffc9, KEY_F12},
    {0xffe1, KEY_LEFTSHIFT}, {0xffe2, KEY_RIGHTSHIFT}, {0xffe3, KEY_LEFTCTRL}, {0xffe4, KEY_RIGHTCTRL},
    {0xffe5, KEY_CAPSLOCK}, {0xffe7, KEY_LEFTMETA}, {0xffe8, KEY_RIGHTMETA}, {0xffe9, KEY_LEFTALT},
    {0xffea, KEY_RIGHTALT}, {0xffeb, KEY_LEFTMETA}, {0xffec, KEY_RIGHTMETA},
    {0xfe03, KEY_RIGHTALT} /* ISO_Level3_Shift (AltGr) */,
};

struct ScancodeKey {
    std::uint8_t scancode;
    std::uint16_t code;
};

// Set 1 scancodes above 0x58 (Linux's codes 1..88 are the scancodes themselves).
constexpr ScancodeKey k_scancodes_high[] = {
    {0x59, KEY_KPEQUAL}, {0x64, KEY_F13}, {0x65, KEY_F14}, {0x66, KEY_F15}, {0x67, KEY_F16},
    {0x68, KEY_F17}, {0x69, KEY_F18}, {0x6a, KEY_F19}, {0x6b, KEY_F20}, {0x6c, KEY_F21},
    {0x6d, KEY_F22}, {0x6e, KEY_F23}, {0x70, KEY_KATAKANAHIRAGANA}, {0x73, KEY_RO},
    {0x76, KEY_F24}, {0x79, KEY_HENKAN}, {0x7b, KEY_MUHENKAN}, {0x7d, KEY_YEN}, {0x7e, KEY_KPCOMMA},
};

// 0xE0-prefixed scancodes.
constexpr ScancodeKey k_scancodes_e0[] = {
    {0x10, KEY_PREVIOUSSONG}, {0x19, KEY_NEXTSONG}, {0x1c, KEY_KPENTER}, {0x1d, KEY_RIGHTCTRL},
    {0x20, KEY_MUTE}, {0x21, KEY_CALC}, {0x22, KEY_PLAYPAUSE}, {0x24, KEY_STOPCD},
    {0x2e, KEY_VOLUMEDOWN}, {0x30, KEY_VOLUMEUP}, {0x32, KEY_HOMEPAGE}, {0x35, KEY_KPSLASH},
    {0x37, KEY_SYSRQ}, {0x38, KEY_RIGHTALT}, {0x46, KEY_PAUSE}, {0x47, KEY_HOME}, {0x48, KEY_UP},
    {0x49, KEY_PAGEUP}, {0x4b, KEY_LEFT}, {0x4d, KEY_RIGHT}, {0x4f, KEY_END}, {0x50, KEY_DOWN},
    {0x51, KEY_PAGEDOWN}, {0x52, KEY_INSERT}, {0x53, KEY_DELETE}, {0x5b, KEY_LEFTMETA},
    {0x5c, KEY_RIGHTMETA}, {0x5d, KEY_COMPOSE}, {0x5e, KEY_POWER}, {0x5f, KEY_SLEEP},
    {0x63, KEY_WAKEUP},
};

}  // namespace

KeyTranslation keysym_to_linux(std::uint32_t keysym) {
    if (keysym >= 0x20 && keysym <= 0x7e) {
        const AsciiKey key = k_ascii[keysym - 0x20];
        return {key.code, key.shifted ? ShiftNeed::Shifted : ShiftNeed::Unshifted};
    }
    for (const KeysymKey& key : k_special) {
        if (key.keysym == keysym) return {key.code, ShiftNeed::Any};
    }
    return {};
}

std::uint16_t xt_scancode_to_linux(std::uint32_t scancode) {
    bool extended = false;
    std::uint8_t byte = 0;
    if ((scancode & 0xff00) == 0xe000 && scancode <= 0xffff) {
        extended = true;
        byte = scancode & 0x7f;
    } else if (scancode <= 0xff) {
        extended = (scancode & 0x80) != 0;
        byte = scancode & 0x7f;
    } else {
        return 0;
    }
    if (!extended) {
        if (byte >= 1 && byte <= 0x58) return byte;
        for (const ScancodeKey& key : k_scancodes_high) {
            if (key.scancode == byte) return key.code;
        }
        return 0;
    }
    for (const ScancodeKey& key : k_scancodes_e0) {
        if (key.scancode == byte) return key.code;
    }
    return 0;
}

}  // namespace corral::display
