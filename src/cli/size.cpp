#include "cli/size.h"

#include <cmath>

#include <fmt/format.h>

namespace corral::cli {

Result<std::uint64_t> parse_size_mib(std::string_view text) {
    const std::uint64_t bytes = TRY(parse_size(text, BareUnit::MiB));
    constexpr std::uint64_t k_mib = 1024 * 1024;
    if (bytes % k_mib != 0)
        return fail(fmt::format("memory size '{}' is not a whole number of MiB (use M or G, such as 512M or 1G)", text));
    return bytes / k_mib;
}

std::string format_size(std::uint64_t bytes) {
    static constexpr const char* k_units[] = {"K", "M", "G", "T", "P"};
    if (bytes < 1024) return fmt::format("{}", bytes);
    double value = static_cast<double>(bytes);
    int unit = -1;
    while (value >= 1024.0 && unit < 4) {
        value /= 1024.0;
        ++unit;
    }
    // Whole numbers print without a fraction (512M, 1G); others with one decimal (1.5G).
    const double rounded = std::round(value * 10.0) / 10.0;
    if (rounded == std::floor(rounded)) return fmt::format("{}{}", static_cast<std::uint64_t>(rounded), k_units[unit]);
    return fmt::format("{:.1f}{}", rounded, k_units[unit]);
}

}  // namespace corral::cli
