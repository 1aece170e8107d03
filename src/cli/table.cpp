#include "cli/table.h"

#include <algorithm>

namespace corral::cli {

namespace {

/// Display width of a UTF-8 string: counts code points, not bytes (good enough for names and dashes).
std::size_t display_width(const std::string& text) {
    std::size_t width = 0;
    for (unsigned char c : text)
        if ((c & 0xC0) != 0x80) ++width;
    return width;
}

void append_padded(std::string& out, const std::string& cell, std::size_t width) {
    out += cell;
    out.append(width - std::min(width, display_width(cell)), ' ');
}

}  // namespace

Table::Table(std::vector<std::string> headers) : m_headers(std::move(headers)) {}

void Table::add_row(std::vector<std::string> cells) {
    cells.resize(m_headers.size());
    m_rows.push_back(std::move(cells));
}

std::string Table::render() const {
    std::vector<std::size_t> widths(m_headers.size(), 0);
    for (std::size_t c = 0; c < m_headers.size(); ++c) widths[c] = display_width(m_headers[c]);
    for (const auto& row : m_rows)
        for (std::size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], display_width(row[c]));

    std::string out;
    auto render_row = [&](const std::vector<std::string>& row) {
        std::string line;
        for (std::size_t c = 0; c < row.size(); ++c) {
            if (c + 1 == row.size()) {
                line += row[c];
            } else {
                append_padded(line, row[c], widths[c]);
                line += "  ";
            }
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        out += line;
        out += '\n';
    };
    render_row(m_headers);
    for (const auto& row : m_rows) render_row(row);
    return out;
}

std::string render_fields(const std::vector<std::pair<std::string, std::string>>& fields) {
    std::size_t width = 0;
    for (const auto& [key, value] : fields) width = std::max(width, display_width(key) + 1);
    std::string out;
    for (const auto& [key, value] : fields) {
        append_padded(out, key + ":", width);
        out += ' ';
        out += value;
        out += '\n';
    }
    return out;
}

}  // namespace corral::cli
