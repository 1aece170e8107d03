#include "cli/size.h"

#include <cctype>
#include <cmath>
#include <limits>

#include <fmt/format.h>

namespace corral::cli {

namespace {

std::string describe(std::string_view text) {
    return fmt::format("invalid size '{}': expected a number with an optional K, M, G or T suffix "
                       "(binary: 1K = 1024), such as 512M, 1G or 10G",
                       text);
}

}  // namespace

Result<std::uint64_t> parse_size(std::string_view text, BareUnit bare) {
    std::size_t i = 0;
    std::uint64_t whole = 0;
    bool any_digit = false;
    constexpr std::uint64_t k_max = std::numeric_limits<std::uint64_t>::max();
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        const std::uint64_t digit = static_cast<std::uint64_t>(text[i] - '0');
        if (whole > (k_max - digit) / 10) return fail(fmt::format("size '{}' is too large", text));
        whole = whole * 10 + digit;
        any_digit = true;
        ++i;
    }
    // Up to 6 decimal places, kept as an integer numerator over 10^6 to stay exact.
    std::uint64_t fraction = 0;
    std::uint64_t fraction_scale = 1;
    if (i < text.size() && text[i] == '.') {
        ++i;
        bool fraction_digit = false;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
            if (fraction_scale >= 1'000'000) return fail(describe(text));
            fraction = fraction * 10 + static_cast<std::uint64_t>(text[i] - '0');
            fraction_scale *= 10;
            fraction_digit = true;
            ++i;
        }
        if (!fraction_digit) return fail(describe(text));
    }
    if (!any_digit) return fail(describe(text));

    std::string suffix;
    for (; i < text.size(); ++i) suffix += static_cast<char>(std::toupper(static_cast<unsigned char>(text[i])));
    std::uint64_t multiplier = 0;
    if (suffix.empty()) {
        multiplier = static_cast<std::uint64_t>(bare);
    } else {
        const char unit = suffix[0];
        const std::string rest = suffix.substr(1);
        if (rest != "" && rest != "B" && rest != "IB") return fail(describe(text));
        switch (unit) {
        case 'B': multiplier = rest.empty() ? 1 : 0; break;
        case 'K': multiplier = 1ULL << 10; break;
        case 'M': multiplier = 1ULL << 20; break;
        case 'G': multiplier = 1ULL << 30; break;
        case 'T': multiplier = 1ULL << 40; break;
        case 'P': multiplier = 1ULL << 50; break;
        default: multiplier = 0; break;
        }
        if (multiplier == 0) return fail(describe(text));
    }

    if (whole > k_max / multiplier) return fail(fmt::format("size '{}' is too large", text));
    std::uint64_t bytes = whole * multiplier;
    if (fraction != 0) {
        // fraction/fraction_scale * multiplier must be a whole number of bytes.
        const unsigned __int128 scaled = static_cast<unsigned __int128>(fraction) * multiplier;
        if (scaled % fraction_scale != 0)
            return fail(fmt::format("size '{}' is not a whole number of bytes", text));
        const std::uint64_t extra = static_cast<std::uint64_t>(scaled / fraction_scale);
        if (bytes > k_max - extra) return fail(fmt::format("size '{}' is too large", text));
        bytes += extra;
    }
    return bytes;
}

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
