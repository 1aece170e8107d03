#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"
#include "display/framebuffer.h"

namespace corral::display {

/// The current screen as a PNG file (8-bit RGB, no alpha, zlib-compressed, chunks IHDR, IDAT,
/// IEND): what the control socket's `screenshot` answers.
Result<std::vector<std::uint8_t>> encode_png(const Framebuffer& framebuffer);

/// PNG of `width` x `height` pixels given as B, G, R, X bytes, rows packed (width * 4 bytes).
/// Fails (Invalid) when `pixels` does not hold exactly that many.
Result<std::vector<std::uint8_t>> encode_png_bgrx(std::uint32_t width, std::uint32_t height,
                                                  const std::vector<std::uint8_t>& pixels);

}  // namespace corral::display
