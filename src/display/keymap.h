#pragma once

#include <cstdint>

namespace corral::display {

/// Whether a keysym needs Shift on a US keyboard: '!' is Shift+1, '1' is 1 without it, and
/// keys like Return or Control type the same either way.
enum class ShiftNeed { Any, Shifted, Unshifted };

/// A keysym translated to the key a US keyboard presses for it (a Linux KEY_* code, 0 when the
/// keysym has no key here).
struct KeyTranslation {
    std::uint16_t code = 0;
    ShiftNeed shift = ShiftNeed::Any;
};

/// X11 keysym (what RFB's KeyEvent carries) to Linux key code, US layout: ASCII, Latin-1 keysyms
/// that are ASCII letters, function, editing, cursor, keypad and modifier keys.
KeyTranslation keysym_to_linux(std::uint32_t keysym);

/// An XT (set 1) make scancode as QEMU's extended key event carries it: one byte, or an 0xE0
/// prefixed key either as 0x80|byte (what noVNC and QEMU send) or as 0xE0xx; to a Linux key
/// code, 0 when unknown.
std::uint16_t xt_scancode_to_linux(std::uint32_t scancode);

/// The keysyms of the Shift keys (tracked to know whether a keysym needs Shift added or taken off).
inline constexpr std::uint32_t k_keysym_shift_left = 0xffe1;
inline constexpr std::uint32_t k_keysym_shift_right = 0xffe2;

}  // namespace corral::display
