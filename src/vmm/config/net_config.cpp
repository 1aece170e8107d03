#include "vmm/config/net_config.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

namespace corral::vmm {
namespace {

constexpr size_t k_max_interface_name = 15;  // IFNAMSIZ - 1
constexpr const char* k_keys = "tap, fd, mac, bps, pps, rx_bps, rx_pps, tx_bps, tx_pps";

/// Rate limit keys as given: "bps"/"pps" for both directions, "rx_*"/"tx_*" for one; the
/// direction-specific ones win whatever the order.
struct RateLimitKeys {
    std::optional<uint64_t> bps, pps, rx_bps, rx_pps, tx_bps, tx_pps;

    /// The slot for `key`, or null when `key` is not a rate limit key.
    std::optional<uint64_t>* slot(std::string_view key) {
        if (key == "bps") return &bps;
        if (key == "pps") return &pps;
        if (key == "rx_bps") return &rx_bps;
        if (key == "rx_pps") return &rx_pps;
        if (key == "tx_bps") return &tx_bps;
        if (key == "tx_pps") return &tx_pps;
        return nullptr;
    }
    void apply(NetConfig& config) const {
        config.rx = {rx_bps.value_or(bps.value_or(0)), rx_pps.value_or(pps.value_or(0))};
        config.tx = {tx_bps.value_or(bps.value_or(0)), tx_pps.value_or(pps.value_or(0))};
    }
};

std::string_view rate_unit(std::string_view key) {
    return key.ends_with("bps") ? "bytes per second" : "frames per second";
}

Result<uint64_t> parse_rate(std::string_view key, std::string_view value, std::string_view what) {
    uint64_t number = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (value.empty() || error != std::errc() || end != value.data() + value.size())
        return fail(fmt::format("{}: {} must be a whole number of {} (0: unlimited), got '{}'", what, key,
                                rate_unit(key), value));
    return number;
}

Result<void> check_tap_name(std::string_view name, std::string_view what) {
    if (name.empty() || name.size() > k_max_interface_name)
        return fail(fmt::format("{}: tap name '{}' must be 1 to {} characters", what, name, k_max_interface_name));
    for (char c : name)
        if (c == '/' || c == ':' || c == ',' || c == '=' || c <= ' ' || c > '~')
            return fail(fmt::format("{}: tap name '{}' contains '{}', which an interface name cannot", what, name,
                                    c));
    return {};
}

Result<int> parse_fd(std::string_view text, std::string_view what) {
    int fd = -1;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), fd);
    if (text.empty() || error != std::errc() || end != text.data() + text.size() || fd < 3)
        return fail(fmt::format("{}: fd '{}' must be a number of an inherited file descriptor (3 or more)", what,
                                text));
    return fd;
}

}  // namespace

Result<MacAddress> parse_mac(std::string_view text, std::string_view what) {
    auto invalid = [&](std::string_view why) {
        return fail(fmt::format("{}: mac '{}' is not valid ({}); write six hex pairs like 52:54:00:12:34:56", what,
                                text, why));
    };
    if (text.size() != 17) return invalid("wrong length");
    MacAddress mac{};
    for (size_t i = 0; i < 6; ++i) {
        if (i > 0 && text[i * 3 - 1] != ':') return invalid("pairs must be separated by ':'");
        const char* begin = text.data() + i * 3;
        auto [end, error] = std::from_chars(begin, begin + 2, mac[i], 16);
        if (error != std::errc() || end != begin + 2) return invalid("not hexadecimal");
    }
    if (mac[0] & 1) return invalid("a multicast address, the first byte must be even");
    if (mac == MacAddress{}) return invalid("all zero");
    return mac;
}

std::string format_mac(const MacAddress& mac) {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
}

MacAddress default_mac(const NetConfig& config, size_t index) {
    std::string key = config.tap ? "tap=" + *config.tap : fmt::format("fd={}", config.fd.value_or(-1));
    key += fmt::format("#{}", index);
    uint32_t hash = 2166136261u;  // FNV-1a
    for (char c : key) {
        hash ^= static_cast<uint8_t>(c);
        hash *= 16777619u;
    }
    return {0x52, 0x54, 0x00, static_cast<uint8_t>(hash >> 16), static_cast<uint8_t>(hash >> 8),
            static_cast<uint8_t>(hash)};
}

Result<NetConfig> parse_net_option(std::string_view text, size_t index) {
    NetConfig config;
    std::optional<MacAddress> mac;
    RateLimitKeys rates;
    if (text.empty()) return fail("--net: empty value; use tap=NAME[,mac=MAC] or fd=N[,mac=MAC]");
    while (!text.empty()) {
        size_t comma = text.find(',');
        std::string_view item = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        size_t equals = item.find('=');
        if (equals == std::string_view::npos)
            return fail(fmt::format("--net: '{}' is not KEY=VALUE; keys: {}", item, k_keys));
        std::string_view key = item.substr(0, equals), value = item.substr(equals + 1);
        if (key == "tap") {
            if (config.tap || config.fd) return fail("--net: give one backend, tap=NAME or fd=N");
            TRY_VOID(check_tap_name(value, "--net"));
            config.tap = std::string(value);
        } else if (key == "fd") {
            if (config.tap || config.fd) return fail("--net: give one backend, tap=NAME or fd=N");
            config.fd = TRY(parse_fd(value, "--net"));
        } else if (key == "mac") {
            if (mac) return fail("--net: mac is given twice");
            mac = TRY(parse_mac(value, "--net"));
        } else if (auto* rate = rates.slot(key)) {
            if (*rate) return fail(fmt::format("--net: {} is given twice", key));
            *rate = TRY(parse_rate(key, value, "--net"));
        } else {
            return fail(fmt::format("--net: unknown key '{}'; keys: {}", key, k_keys));
        }
    }
    if (!config.tap && !config.fd) return fail("--net: a backend is required: tap=NAME or fd=N");
    config.mac = mac ? *mac : default_mac(config, index);
    rates.apply(config);
    return config;
}

Result<NetConfig> net_config_from_json(const nlohmann::json& entry, size_t index) {
    std::string what = fmt::format("VM config: nets[{}]", index);
    if (!entry.is_object())
        return fail(fmt::format("{} must be an object like {{\"tap\": \"tap0\", \"mac\": \"52:54:00:12:34:56\"}}",
                                what));
    NetConfig config;
    std::optional<MacAddress> mac;
    RateLimitKeys rates;
    for (const auto& [key, value] : entry.items()) {
        if (key == "tap") {
            if (!value.is_string()) return fail(fmt::format("{}: 'tap' must be a string", what));
            TRY_VOID(check_tap_name(value.get<std::string>(), what));
            config.tap = value.get<std::string>();
        } else if (key == "fd") {
            if (!value.is_number_integer()) return fail(fmt::format("{}: 'fd' must be a number", what));
            config.fd = TRY(parse_fd(std::to_string(value.get<int64_t>()), what));
        } else if (key == "mac") {
            if (!value.is_string()) return fail(fmt::format("{}: 'mac' must be a string", what));
            mac = TRY(parse_mac(value.get<std::string>(), what));
        } else if (auto* rate = rates.slot(key)) {
            // A JSON whole number >= 0 (nlohmann stores 5 as signed unless parsed as unsigned).
            bool whole = value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0);
            if (!whole)
                return fail(fmt::format("{}: '{}' must be a whole number of {} (0: unlimited)", what, key,
                                        rate_unit(key)));
            *rate = value.get<uint64_t>();
        } else {
            return fail(fmt::format("{}: unknown key '{}'; keys: {}", what, key, k_keys));
        }
    }
    if (config.tap && config.fd) return fail(fmt::format("{}: give one backend, 'tap' or 'fd'", what));
    if (!config.tap && !config.fd) return fail(fmt::format("{}: a backend is required: 'tap' or 'fd'", what));
    config.mac = mac ? *mac : default_mac(config, index);
    rates.apply(config);
    return config;
}

nlohmann::json net_config_to_json(const NetConfig& config) {
    nlohmann::json entry = nlohmann::json::object();
    if (config.tap) entry["tap"] = *config.tap;
    if (config.fd) entry["fd"] = *config.fd;
    entry["mac"] = format_mac(config.mac);
    auto put = [&](const char* key, uint64_t value) {
        if (value) entry[key] = value;
    };
    if (config.rx == config.tx) {
        put("bps", config.rx.bytes_per_second);
        put("pps", config.rx.packets_per_second);
    } else {
        put("rx_bps", config.rx.bytes_per_second);
        put("rx_pps", config.rx.packets_per_second);
        put("tx_bps", config.tx.bytes_per_second);
        put("tx_pps", config.tx.packets_per_second);
    }
    return entry;
}

}  // namespace corral::vmm
