#pragma once

#include <string>

namespace corral::display {
class Framebuffer;
}

namespace corral::vmm {

/// The control answer to "screenshot": `{"ok":true,"width":W,"height":H,"png_base64":"..."}`
/// with a PNG of the screen as it is now, or `{"ok":false,"error":...}` when the VM has no
/// display (`framebuffer` null) or the PNG cannot be made.
std::string screenshot_answer(const display::Framebuffer* framebuffer);

/// Standard base64 (RFC 4648 §4, with padding).
std::string base64_encode(const unsigned char* data, size_t size);

}  // namespace corral::vmm
