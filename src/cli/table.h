#pragma once

#include <string>
#include <vector>

namespace corral::cli {

/// A text table with aligned columns, as `corral vm list` prints it: a header row in capitals,
/// columns separated by two spaces, the last column not padded.
class Table {
public:
    explicit Table(std::vector<std::string> headers);

    /// Adds a row; missing cells are empty, extra cells are an error in the caller (ignored).
    void add_row(std::vector<std::string> cells);

    std::size_t rows() const { return m_rows.size(); }

    /// The table as text, one line per row (header first), each ending in '\n'.
    std::string render() const;

private:
    std::vector<std::string> m_headers;
    std::vector<std::vector<std::string>> m_rows;
};

/// Renders `key: value` lines with the keys padded to one width (for `show` verbs).
std::string render_fields(const std::vector<std::pair<std::string, std::string>>& fields);

}  // namespace corral::cli
