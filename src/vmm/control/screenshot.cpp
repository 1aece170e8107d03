#include "vmm/control/screenshot.h"

#include <nlohmann/json.hpp>

#include "display/framebuffer.h"
#include "display/png.h"
#include "vmm/control/control_request.h"

namespace corral::vmm {

std::string base64_encode(const unsigned char* data, size_t size) {
    static constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((size + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        uint32_t group = uint32_t{data[i]} << 16 | uint32_t{data[i + 1]} << 8 | data[i + 2];
        for (int shift = 18; shift >= 0; shift -= 6) out += k_alphabet[(group >> shift) & 63];
    }
    if (size - i == 1) {
        uint32_t group = uint32_t{data[i]} << 16;
        out += k_alphabet[(group >> 18) & 63];
        out += k_alphabet[(group >> 12) & 63];
        out += "==";
    } else if (size - i == 2) {
        uint32_t group = uint32_t{data[i]} << 16 | uint32_t{data[i + 1]} << 8;
        out += k_alphabet[(group >> 18) & 63];
        out += k_alphabet[(group >> 12) & 63];
        out += k_alphabet[(group >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string screenshot_answer(const display::Framebuffer* framebuffer) {
    if (!framebuffer) return control_error_answer("this VM has no display (start it with --display)");
    // Width and height are read with the pixels' size: encode_png takes one consistent picture,
    // and a resize between would only change what the next screenshot shows.
    auto png = display::encode_png(*framebuffer);
    if (!png) return control_error_answer("screenshot: " + png.error().describe());
    uint32_t width = 0, height = 0;
    if (png->size() >= 24) {  // the IHDR chunk: width and height, big-endian, at 16 and 20
        auto be32 = [&](size_t at) {
            return uint32_t{(*png)[at]} << 24 | uint32_t{(*png)[at + 1]} << 16 | uint32_t{(*png)[at + 2]} << 8 |
                   (*png)[at + 3];
        };
        width = be32(16);
        height = be32(20);
    }
    nlohmann::json answer = {{"ok", true},
                             {"width", width},
                             {"height", height},
                             {"png_base64", base64_encode(png->data(), png->size())}};
    return answer.dump();
}

}  // namespace corral::vmm
