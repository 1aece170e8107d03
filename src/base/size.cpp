#include "base/size.h"

#include <cerrno>
#include <limits>
#include <string>

#include <fmt/format.h>

namespace corral {
namespace {

constexpr std::uint64_t k_max = std::numeric_limits<std::uint64_t>::max();

std::unexpected<Error> invalid(std::string_view text) {
    return fail(fmt::format("invalid size '{}': expected a number with an optional K, M, G, T or P suffix "
                            "(binary: 1K = 1024), such as 512M, 1G or 10G",
                            text),
                EINVAL);
}

std::unexpected<Error> too_large(std::string_view text) {
    return fail(fmt::format("size '{}' is too large", text), EINVAL);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

char upper(char c) { return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c; }

}  // namespace

Result<std::uint64_t> parse_size(std::string_view text, BareUnit bare) {
    std::size_t i = 0;
    std::uint64_t whole = 0;
    bool any_digit = false;
    while (i < text.size() && is_digit(text[i])) {
        const auto digit = static_cast<std::uint64_t>(text[i] - '0');
        if (whole > (k_max - digit) / 10) return too_large(text);
        whole = whole * 10 + digit;
        any_digit = true;
        ++i;
    }
    // Up to 6 decimal places, kept as an integer numerator over 10^digits to stay exact.
    std::uint64_t fraction = 0;
    std::uint64_t fraction_scale = 1;
    if (i < text.size() && text[i] == '.') {
        ++i;
        bool fraction_digit = false;
        while (i < text.size() && is_digit(text[i])) {
            if (fraction_scale >= 1'000'000) return invalid(text);
            fraction = fraction * 10 + static_cast<std::uint64_t>(text[i] - '0');
            fraction_scale *= 10;
            fraction_digit = true;
            ++i;
        }
        if (!fraction_digit) return invalid(text);
    }
    if (!any_digit) return invalid(text);

    std::string suffix;
    for (; i < text.size(); ++i) suffix += upper(text[i]);
    std::uint64_t multiplier = 0;
    if (suffix.empty()) {
        multiplier = static_cast<std::uint64_t>(bare);
    } else {
        const std::string rest = suffix.substr(1);
        if (rest != "" && rest != "B" && rest != "IB") return invalid(text);
        switch (suffix[0]) {
            case 'B': multiplier = rest.empty() ? 1 : 0; break;
            case 'K': multiplier = 1ULL << 10; break;
            case 'M': multiplier = 1ULL << 20; break;
            case 'G': multiplier = 1ULL << 30; break;
            case 'T': multiplier = 1ULL << 40; break;
            case 'P': multiplier = 1ULL << 50; break;
            default: multiplier = 0; break;
        }
        if (multiplier == 0) return invalid(text);
    }

    if (whole > k_max / multiplier) return too_large(text);
    std::uint64_t bytes = whole * multiplier;
    if (fraction != 0) {
        // fraction / fraction_scale * multiplier must be a whole number of bytes.
        const unsigned __int128 scaled = static_cast<unsigned __int128>(fraction) * multiplier;
        if (scaled % fraction_scale != 0)
            return fail(fmt::format("size '{}' is not a whole number of bytes", text), EINVAL);
        const auto extra = static_cast<std::uint64_t>(scaled / fraction_scale);
        if (bytes > k_max - extra) return too_large(text);
        bytes += extra;
    }
    return bytes;
}

}  // namespace corral
