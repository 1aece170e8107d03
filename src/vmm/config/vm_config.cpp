#include "vmm/config/vm_config.h"

#include <fmt/format.h>

#include <charconv>
#include <nlohmann/json.hpp>
#include <set>

namespace corral::vmm {

Result<uint64_t> parse_memory_size(std::string_view text, std::string_view what) {
    auto invalid = [&] {
        return fail(fmt::format("{}: '{}' is not a memory size; use a number with K, M or G "
                                "(e.g. 512M, 2G; a plain number means MiB)",
                                what, text));
    };
    if (text.empty()) return invalid();
    uint64_t number = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    if (error != std::errc() || end == text.data()) return invalid();
    std::string_view suffix(end, static_cast<size_t>(text.data() + text.size() - end));
    uint64_t unit;
    if (suffix.empty() || suffix == "M" || suffix == "m" || suffix == "MiB") unit = 1ull << 20;
    else if (suffix == "K" || suffix == "k" || suffix == "KiB") unit = 1ull << 10;
    else if (suffix == "G" || suffix == "g" || suffix == "GiB") unit = 1ull << 30;
    else return invalid();
    if (number > k_max_memory_bytes / unit)
        return fail(fmt::format("{}: '{}' is more than the 1024G maximum", what, text));
    return number * unit;
}

Result<void> parse_console(std::string_view text, std::string_view what, VmConfig& config) {
    constexpr std::string_view k_socket_prefix = "socket=";
    if (text == "stdio") {
        config.console = ConsoleKind::Stdio;
    } else if (text == "none") {
        config.console = ConsoleKind::None;
    } else if (text.starts_with(k_socket_prefix) && text.size() > k_socket_prefix.size()) {
        config.console = ConsoleKind::Socket;
        config.console_socket_path = std::string(text.substr(k_socket_prefix.size()));
    } else {
        return fail(fmt::format("{} must be 'stdio', 'none' or 'socket=PATH', got '{}'", what, text));
    }
    return {};
}

std::string console_to_string(const VmConfig& config) {
    switch (config.console) {
        case ConsoleKind::Stdio: return "stdio";
        case ConsoleKind::None: return "none";
        case ConsoleKind::Socket: return "socket=" + config.console_socket_path;
    }
    return "stdio";
}

Result<void> parse_virtio_console(std::string_view text, std::string_view what, VmConfig& config) {
    constexpr std::string_view k_socket_prefix = "socket=";
    if (text.empty() || text == "serial") {
        config.virtio_console_socket_path.clear();
    } else if (text.starts_with(k_socket_prefix) && text.size() > k_socket_prefix.size()) {
        config.virtio_console_socket_path = std::string(text.substr(k_socket_prefix.size()));
    } else {
        return fail(fmt::format("{} must be 'serial' (the default: output with the serial console's) or "
                                "'socket=PATH', got '{}'",
                                what, text));
    }
    config.virtio_console = true;
    return {};
}

Result<void> parse_display(std::string_view text, std::string_view what, VmConfig& config) {
    auto invalid = [&] {
        return fail(fmt::format("{} must be WIDTHxHEIGHT from {}x{} to {}x{} (e.g. 1024x768), got '{}'", what,
                                k_min_display_width, k_min_display_height, k_max_display_width,
                                k_max_display_height, text));
    };
    size_t x = text.find('x');
    if (x == std::string_view::npos) return invalid();
    uint32_t width = 0, height = 0;
    auto parse = [](std::string_view digits, uint32_t& out) {
        auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
        return error == std::errc() && end == digits.data() + digits.size() && !digits.empty();
    };
    if (!parse(text.substr(0, x), width) || !parse(text.substr(x + 1), height)) return invalid();
    if (width < k_min_display_width || width > k_max_display_width || height < k_min_display_height ||
        height > k_max_display_height)
        return invalid();
    config.display_width = width;
    config.display_height = height;
    return {};
}

Result<void> parse_vnc_address(std::string_view text, std::string_view what, std::string& path) {
    constexpr std::string_view k_unix_prefix = "unix:";
    if (!text.starts_with(k_unix_prefix) || text.size() == k_unix_prefix.size())
        return fail(fmt::format("{} must be unix:PATH (a unix socket the monitor creates), got '{}'", what, text));
    path = std::string(text.substr(k_unix_prefix.size()));
    return {};
}

Result<void> validate(const VmConfig& config) {
    if (config.kernel_path.empty()) return fail("--kernel is required: the path of a Linux bzImage or an ELF kernel");
    if (config.cpus < 1 || config.cpus > k_max_cpus)
        return fail(fmt::format("--cpus must be between 1 and {}, got {}", k_max_cpus, config.cpus));
    if (config.memory_bytes < k_min_memory_bytes)
        return fail(fmt::format("--memory must be at least 2M, got {} bytes", config.memory_bytes));
    if (config.memory_bytes > k_max_memory_bytes)
        return fail("--memory must be at most 1024G");
    if (config.memory_bytes % 4096 != 0)
        return fail("--memory must be a multiple of 4K");
    if (config.shutdown_timeout_seconds > 3600)
        return fail("--shutdown-timeout must be between 0 and 3600 seconds");
    if (config.virtio_console && !config.virtio_console_socket_path.empty() && config.console == ConsoleKind::Socket &&
        config.virtio_console_socket_path == config.console_socket_path)
        return fail("--virtio-console socket=PATH must differ from --console socket=PATH");
    if (!config.has_display() && !config.vnc_socket_path.empty())
        return fail("--vnc needs --display WIDTHxHEIGHT: there is no screen to show without a display");
    if (!config.has_display() && !config.vnc_view_only_socket_path.empty())
        return fail("--vnc-view-only needs --display WIDTHxHEIGHT: there is no screen to show without a display");
    if (!config.vnc_socket_path.empty() && config.vnc_socket_path == config.vnc_view_only_socket_path)
        return fail("--vnc and --vnc-view-only must be different sockets");
    return {};
}

Result<VmConfig> vm_config_from_json(const nlohmann::json& document) {
    if (!document.is_object()) return fail("VM config must be a JSON object");
    static const std::set<std::string> k_known = {"kernel", "initrd",  "cmdline",
                                                  "memory", "cpus",    "hugepages",
                                                  "on_reboot", "console", "shutdown_timeout",
                                                  "rng", "balloon", "virtio_console", "nets", "disks",
                                                  "display", "vnc", "vnc_view_only"};
    VmConfig config;
    for (const auto& [key, value] : document.items()) {
        if (!k_known.contains(key))
            return fail(fmt::format("VM config: unknown key '{}'; allowed: kernel, initrd, cmdline, "
                                    "memory, cpus, hugepages, on_reboot, console, shutdown_timeout, rng, balloon, "
                                    "virtio_console, nets, disks, display, vnc, vnc_view_only",
                                    key));
        auto want = [&](bool ok, const char* type) -> Result<void> {
            if (!ok) return fail(fmt::format("VM config: '{}' must be {}", key, type));
            return {};
        };
        if (key == "kernel") {
            TRY_VOID(want(value.is_string(), "a string (a path)"));
            config.kernel_path = value.get<std::string>();
        } else if (key == "initrd") {
            TRY_VOID(want(value.is_string(), "a string (a path)"));
            config.initrd_path = value.get<std::string>();
        } else if (key == "cmdline") {
            TRY_VOID(want(value.is_string(), "a string"));
            config.cmdline = value.get<std::string>();
        } else if (key == "memory") {
            if (value.is_number_unsigned()) {
                config.memory_bytes =
                    TRY(parse_memory_size(std::to_string(value.get<uint64_t>()), "memory"));
            } else {
                TRY_VOID(want(value.is_string(), "a size like \"512M\" or a number of MiB"));
                config.memory_bytes = TRY(parse_memory_size(value.get<std::string>(), "memory"));
            }
        } else if (key == "cpus") {
            TRY_VOID(want(value.is_number_unsigned() && value.get<uint64_t>() <= k_max_cpus,
                          "a whole number from 1 to 254"));
            config.cpus = value.get<uint32_t>();
        } else if (key == "hugepages") {
            TRY_VOID(want(value.is_boolean(), "true or false"));
            config.page_backing = value.get<bool>() ? PageBacking::Huge : PageBacking::Normal;
        } else if (key == "on_reboot") {
            TRY_VOID(want(value == "exit" || value == "restart", "\"exit\" or \"restart\""));
            config.on_reboot = value == "exit" ? RebootAction::Exit : RebootAction::Restart;
        } else if (key == "console") {
            TRY_VOID(want(value.is_string(), "\"stdio\", \"none\" or \"socket=PATH\""));
            TRY_VOID(parse_console(value.get<std::string>(), "VM config: 'console'", config));
        } else if (key == "shutdown_timeout") {
            TRY_VOID(want(value.is_number_unsigned() && value.get<uint64_t>() <= 3600,
                          "a number of seconds from 0 to 3600"));
            config.shutdown_timeout_seconds = value.get<uint32_t>();
        } else if (key == "rng") {
            TRY_VOID(want(value.is_boolean(), "true or false"));
            config.rng = value.get<bool>();
        } else if (key == "balloon") {
            TRY_VOID(want(value.is_boolean(), "true or false"));
            config.balloon = value.get<bool>();
        } else if (key == "virtio_console") {
            TRY_VOID(want(value.is_boolean() || value.is_string(), "true, false, \"serial\" or \"socket=PATH\""));
            if (value.is_boolean()) config.virtio_console = value.get<bool>();
            else TRY_VOID(parse_virtio_console(value.get<std::string>(), "VM config: 'virtio_console'", config));
        } else if (key == "display") {
            TRY_VOID(want(value.is_string(), "a size like \"1024x768\""));
            TRY_VOID(parse_display(value.get<std::string>(), "VM config: 'display'", config));
        } else if (key == "vnc" || key == "vnc_view_only") {
            TRY_VOID(want(value.is_string(), "\"unix:PATH\""));
            TRY_VOID(parse_vnc_address(value.get<std::string>(), fmt::format("VM config: '{}'", key),
                                       key == "vnc" ? config.vnc_socket_path : config.vnc_view_only_socket_path));
        } else if (key == "nets") {
            TRY_VOID(want(value.is_array(), "an array of NICs like [{\"tap\": \"tap0\"}]"));
            for (size_t i = 0; i < value.size(); ++i) config.nets.push_back(TRY(net_config_from_json(value[i], i)));
        } else if (key == "disks") {
            TRY_VOID(want(value.is_array(), "an array of disks like [{\"path\": \"disk.raw\"}]"));
            for (size_t i = 0; i < value.size(); ++i)
                config.disks.push_back(TRY(disk_config_from_json(value[i], i)));
        }
    }
    return config;
}

nlohmann::json vm_config_to_json(const VmConfig& config) {
    nlohmann::json document = {
        {"kernel", config.kernel_path},
        {"cmdline", config.cmdline},
        {"memory", fmt::format("{}K", config.memory_bytes / 1024)},
        {"cpus", config.cpus},
        {"hugepages", config.page_backing == PageBacking::Huge},
        {"on_reboot", config.on_reboot == RebootAction::Exit ? "exit" : "restart"},
        {"console", console_to_string(config)},
        {"shutdown_timeout", config.shutdown_timeout_seconds},
        {"rng", config.rng},
        {"virtio_console", config.virtio_console},
    };
    if (config.balloon) document["balloon"] = true;
    if (config.initrd_path) document["initrd"] = *config.initrd_path;
    if (config.virtio_console && !config.virtio_console_socket_path.empty())
        document["virtio_console"] = "socket=" + config.virtio_console_socket_path;
    if (config.has_display())
        document["display"] = fmt::format("{}x{}", config.display_width, config.display_height);
    if (!config.vnc_socket_path.empty()) document["vnc"] = "unix:" + config.vnc_socket_path;
    if (!config.vnc_view_only_socket_path.empty()) document["vnc_view_only"] = "unix:" + config.vnc_view_only_socket_path;
    if (!config.nets.empty()) {
        document["nets"] = nlohmann::json::array();
        for (const NetConfig& net : config.nets) document["nets"].push_back(net_config_to_json(net));
    }
    if (!config.disks.empty()) {
        document["disks"] = nlohmann::json::array();
        for (const DiskConfig& disk : config.disks) document["disks"].push_back(disk_config_to_json(disk));
    }
    return document;
}

}  // namespace corral::vmm
