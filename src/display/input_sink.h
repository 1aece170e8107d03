#pragma once

#include <cstdint>

namespace corral::display {

/// Where a viewer's keyboard and pointer go: the guest's input devices (virtio-input keyboard and
/// tablet in corral-vmm). Keys are Linux input key codes (KEY_* of <linux/input-event-codes.h>),
/// which virtio-input sends as they are; the VNC server translates RFB's keysyms and QEMU's
/// extended-key scancodes into them. Called from the VNC server's thread.
class InputSink {
public:
    virtual ~InputSink() = default;
    /// A key pressed (`down`) or released.
    virtual void key(std::uint16_t linux_key_code, bool down) = 0;
    /// The pointer at (`x`, `y`) on a screen of `width` x `height` pixels, with RFB's button mask
    /// (bit 0 left, 1 middle, 2 right, 3/4 wheel up/down).
    virtual void pointer(std::uint32_t x, std::uint32_t y, std::uint32_t width,
                         std::uint32_t height, std::uint8_t buttons) = 0;
};

}  // namespace corral::display
