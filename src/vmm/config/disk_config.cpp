#include "vmm/config/disk_config.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>

namespace corral::vmm {
namespace {

constexpr const char* k_allowed_keys = "path, readonly, serial, format, bps, iops";

Result<void> check_serial(const std::string& serial, std::string_view what) {
    if (serial.size() > k_max_disk_serial)
        return fail(fmt::format("{}: serial '{}' is longer than {} bytes", what, serial, k_max_disk_serial));
    for (char c : serial)
        if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
            return fail(fmt::format("{}: serial must be printable ASCII", what));
    return {};
}

Result<DiskFormat> parse_disk_format(std::string_view value, std::string_view what) {
    if (value == "raw") return DiskFormat::Raw;
    if (value == "qcow2") return DiskFormat::Qcow2;
    return fail(fmt::format("{}: format must be 'raw' or 'qcow2', got '{}'", what, value));
}

const char* disk_format_name(DiskFormat format) {
    switch (format) {
        case DiskFormat::Raw: return "raw";
        case DiskFormat::Qcow2: return "qcow2";
        case DiskFormat::Probe: break;
    }
    return "probe";
}

Result<uint64_t> parse_rate(std::string_view key, std::string_view value) {
    uint64_t number = 0;
    auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
    if (error != std::errc() || end != value.data() + value.size() || value.empty())
        return fail(fmt::format("--disk: {} must be a whole number (0: unlimited), got '{}'", key, value));
    return number;
}

/// A JSON whole number >= 0 (nlohmann stores 5 as signed unless it was parsed as unsigned).
bool non_negative(const nlohmann::json& value) {
    return value.is_number_unsigned() || (value.is_number_integer() && value.get<int64_t>() >= 0);
}

}  // namespace

Result<DiskConfig> parse_disk_option(std::string_view text) {
    DiskConfig config;
    bool have_path = false;
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        if (comma == std::string_view::npos) comma = text.size();
        std::string_view item = text.substr(start, comma - start);
        start = comma + 1;
        if (item.empty()) {
            if (comma == text.size()) break;
            return fail(fmt::format("--disk: empty item in '{}'", text));
        }
        size_t equals = item.find('=');
        if (equals == std::string_view::npos)
            return fail(fmt::format("--disk: '{}' is not KEY=VALUE; allowed keys: {}", item, k_allowed_keys));
        std::string_view key = item.substr(0, equals);
        std::string_view value = item.substr(equals + 1);
        if (key == "path") {
            if (value.empty()) return fail("--disk: path must not be empty");
            config.path = std::string(value);
            have_path = true;
        } else if (key == "readonly") {
            if (value == "on" || value == "true") config.read_only = true;
            else if (value == "off" || value == "false") config.read_only = false;
            else return fail(fmt::format("--disk: readonly must be 'on' or 'off', got '{}'", value));
        } else if (key == "serial") {
            config.serial = std::string(value);
            TRY_VOID(check_serial(config.serial, "--disk"));
        } else if (key == "format") {
            config.format = TRY(parse_disk_format(value, "--disk"));
        } else if (key == "bps") {
            config.bytes_per_second = TRY(parse_rate(key, value));
        } else if (key == "iops") {
            config.ops_per_second = TRY(parse_rate(key, value));
        } else {
            return fail(fmt::format("--disk: unknown key '{}'; allowed: {}", key, k_allowed_keys));
        }
    }
    if (!have_path) return fail(fmt::format("--disk: path=FILE is required (in '{}')", text));
    return config;
}

Result<DiskConfig> disk_config_from_json(const nlohmann::json& entry, size_t index) {
    std::string what = fmt::format("VM config: disks[{}]", index);
    if (!entry.is_object()) return fail(fmt::format("{} must be an object like {{\"path\": \"disk.raw\"}}", what));
    DiskConfig config;
    for (const auto& [key, value] : entry.items()) {
        auto want = [&](bool ok, const char* type) -> Result<void> {
            if (!ok) return fail(fmt::format("{}: '{}' must be {}", what, key, type));
            return {};
        };
        if (key == "path") {
            TRY_VOID(want(value.is_string() && !value.get<std::string>().empty(), "a non-empty string (a path)"));
            config.path = value.get<std::string>();
        } else if (key == "readonly") {
            TRY_VOID(want(value.is_boolean(), "true or false"));
            config.read_only = value.get<bool>();
        } else if (key == "serial") {
            TRY_VOID(want(value.is_string(), "a string"));
            config.serial = value.get<std::string>();
            TRY_VOID(check_serial(config.serial, what));
        } else if (key == "format") {
            TRY_VOID(want(value.is_string(), "\"raw\" or \"qcow2\""));
            config.format = TRY(parse_disk_format(value.get<std::string>(), what));
        } else if (key == "bps") {
            TRY_VOID(want(non_negative(value), "a whole number of bytes per second (0: unlimited)"));
            config.bytes_per_second = value.get<uint64_t>();
        } else if (key == "iops") {
            TRY_VOID(want(non_negative(value), "a whole number of requests per second (0: unlimited)"));
            config.ops_per_second = value.get<uint64_t>();
        } else {
            return fail(fmt::format("{}: unknown key '{}'; allowed: {}", what, key, k_allowed_keys));
        }
    }
    if (config.path.empty()) return fail(fmt::format("{}: \"path\" is required", what));
    return config;
}

nlohmann::json disk_config_to_json(const DiskConfig& config) {
    nlohmann::json entry = {{"path", config.path}, {"readonly", config.read_only}};
    if (!config.serial.empty()) entry["serial"] = config.serial;
    if (config.format != DiskFormat::Probe) entry["format"] = disk_format_name(config.format);
    if (config.bytes_per_second) entry["bps"] = config.bytes_per_second;
    if (config.ops_per_second) entry["iops"] = config.ops_per_second;
    return entry;
}

}  // namespace corral::vmm
