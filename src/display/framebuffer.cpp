#include "display/framebuffer.h"

#include <algorithm>
#include <cstring>

namespace corral::display {

namespace {

std::uint32_t clamp_dimension(std::uint32_t value, std::uint32_t max) {
    return std::clamp<std::uint32_t>(value, 1, max);
}

std::uint32_t tiles_for(std::uint32_t pixels) {
    return (pixels + Framebuffer::k_tile - 1) / Framebuffer::k_tile;
}

// `rect` cut to a width x height screen; empty when it lies outside.
Rect clip(Rect rect, std::uint32_t width, std::uint32_t height) {
    if (rect.x >= width || rect.y >= height) {
        return {};
    }
    rect.width = std::min(rect.width, width - rect.x);
    rect.height = std::min(rect.height, height - rect.y);
    return rect;
}

}  // namespace

Framebuffer::Framebuffer(std::uint32_t width, std::uint32_t height)
    : m_width(clamp_dimension(width, k_max_width)), m_height(clamp_dimension(height, k_max_height)) {
    m_pixels.assign(std::size_t{m_width} * m_height * 4, 0);
    m_tile_serials.assign(std::size_t{tiles_for(m_width)} * tiles_for(m_height), 0);
}

std::uint32_t Framebuffer::width() const {
    std::lock_guard lock(m_mutex);
    return m_width;
}

std::uint32_t Framebuffer::height() const {
    std::lock_guard lock(m_mutex);
    return m_height;
}

std::uint64_t Framebuffer::generation() const {
    std::lock_guard lock(m_mutex);
    return m_generation;
}

std::uint64_t Framebuffer::serial() const {
    std::lock_guard lock(m_mutex);
    return m_serial;
}

void Framebuffer::resize(std::uint32_t width, std::uint32_t height) {
    {
        std::lock_guard lock(m_mutex);
        m_width = clamp_dimension(width, k_max_width);
        m_height = clamp_dimension(height, k_max_height);
        m_pixels.assign(std::size_t{m_width} * m_height * 4, 0);
        m_tile_serials.assign(std::size_t{tiles_for(m_width)} * tiles_for(m_height), 0);
        ++m_generation;
        mark_locked({0, 0, m_width, m_height});
    }
    if (m_listener) {
        m_listener();
    }
}

bool Framebuffer::update(Rect rect, std::span<const std::uint8_t> source, std::size_t source_stride) {
    {
        std::lock_guard lock(m_mutex);
        const Rect clipped = clip(rect, m_width, m_height);
        if (clipped.width == 0 || clipped.height == 0) {
            return true;
        }
        const std::size_t row_bytes = std::size_t{clipped.width} * 4;
        if (source_stride < row_bytes ||
            source.size() < source_stride * (clipped.height - 1) + row_bytes) {
            return false;
        }
        for (std::uint32_t row = 0; row < clipped.height; ++row) {
            std::memcpy(&m_pixels[(std::size_t{clipped.y + row} * m_width + clipped.x) * 4],
                        &source[row * source_stride], row_bytes);
        }
        mark_locked(clipped);
    }
    if (m_listener) {
        m_listener();
    }
    return true;
}

void Framebuffer::mark_locked(Rect rect) {
    ++m_serial;
    const std::uint32_t columns = tiles_for(m_width);
    const std::uint32_t first_column = rect.x / k_tile;
    const std::uint32_t last_column = (rect.x + rect.width - 1) / k_tile;
    const std::uint32_t first_row = rect.y / k_tile;
    const std::uint32_t last_row = (rect.y + rect.height - 1) / k_tile;
    for (std::uint32_t row = first_row; row <= last_row; ++row) {
        for (std::uint32_t column = first_column; column <= last_column; ++column) {
            m_tile_serials[std::size_t{row} * columns + column] = m_serial;
        }
    }
}

Framebuffer::Changes Framebuffer::changes_since(std::uint64_t since, std::uint64_t generation) const {
    std::lock_guard lock(m_mutex);
    Changes changes{.rects = {}, .serial = m_serial, .generation = m_generation, .width = m_width,
                    .height = m_height};
    if (generation != m_generation) {
        changes.rects.push_back({0, 0, m_width, m_height});
        return changes;
    }
    const std::uint32_t columns = tiles_for(m_width);
    const std::uint32_t rows = tiles_for(m_height);
    for (std::uint32_t row = 0; row < rows; ++row) {
        // Runs of changed tiles in a row become one rectangle: fewer, larger updates.
        std::uint32_t column = 0;
        while (column < columns) {
            if (m_tile_serials[std::size_t{row} * columns + column] <= since) {
                ++column;
                continue;
            }
            const std::uint32_t start = column;
            while (column < columns && m_tile_serials[std::size_t{row} * columns + column] > since) {
                ++column;
            }
            changes.rects.push_back(clip({start * k_tile, row * k_tile, (column - start) * k_tile, k_tile},
                                         m_width, m_height));
        }
    }
    return changes;
}

void Framebuffer::read(Rect rect, std::vector<std::uint8_t>& out) const {
    std::lock_guard lock(m_mutex);
    const Rect clipped = clip(rect, m_width, m_height);
    const std::size_t row_bytes = std::size_t{clipped.width} * 4;
    out.resize(row_bytes * clipped.height);
    for (std::uint32_t row = 0; row < clipped.height; ++row) {
        std::memcpy(&out[row * row_bytes], &m_pixels[(std::size_t{clipped.y + row} * m_width + clipped.x) * 4],
                    row_bytes);
    }
}

void Framebuffer::set_change_listener(std::function<void()> listener) {
    m_listener = std::move(listener);
}

}  // namespace corral::display
