#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"
#include "vmm/config/disk_config.h"
#include "vmm/config/net_config.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm {

/// What the monitor does when the guest resets (reboot): end with exit code 0, or boot again.
enum class RebootAction { Exit, Restart };

/// Where the guest's serial console goes.
enum class ConsoleKind { Stdio, None, Socket };

/// A VM's configuration: plain validated values, no live resources.
struct VmConfig {
    std::string kernel_path;
    std::optional<std::string> initrd_path;
    std::string cmdline = "console=ttyS0 reboot=k panic=1";
    uint64_t memory_bytes = 512ull * 1024 * 1024;
    uint32_t cpus = 1;
    PageBacking page_backing = PageBacking::Normal;
    RebootAction on_reboot = RebootAction::Exit;
    ConsoleKind console = ConsoleKind::Stdio;
    /// For ConsoleKind::Socket: the unix socket path the monitor listens on.
    std::string console_socket_path;
    /// How long SIGTERM waits for the guest to power off before stopping it.
    uint32_t shutdown_timeout_seconds = 10;
    /// virtio-rng (entropy from the host's getrandom()); opt-in, like Firecracker's.
    bool rng = false;
    /// virtio-balloon with statistics and free page reporting (--balloon); opt-in.
    bool balloon = false;
    /// virtio-console (the guest's hvc0); opt-in. Without a socket path its output goes where
    /// the serial console's goes and it takes no input; with one, hvc0 is on that unix socket
    /// both ways.
    bool virtio_console = false;
    std::string virtio_console_socket_path;
    /// virtio-net NICs (--net, repeatable), attached in this order.
    std::vector<NetConfig> nets;
    /// virtio-blk disks (--disk, repeatable): /dev/vda, /dev/vdb, ... in this order.
    std::vector<DiskConfig> disks;
    /// --display WxH: a virtio-gpu (one scanout, this preferred mode) and a virtio keyboard and
    /// tablet; 0 x 0 (the default): no display devices.
    uint32_t display_width = 0;
    uint32_t display_height = 0;
    /// --vnc unix:PATH and --vnc-view-only unix:PATH: RFB servers for the display (need one).
    std::string vnc_socket_path;
    std::string vnc_view_only_socket_path;

    bool has_display() const { return display_width != 0; }
};

constexpr uint32_t k_min_display_width = 640;
constexpr uint32_t k_min_display_height = 480;
constexpr uint32_t k_max_display_width = 3840;
constexpr uint32_t k_max_display_height = 2160;

constexpr uint32_t k_max_cpus = 254;
constexpr uint64_t k_min_memory_bytes = 2ull * 1024 * 1024;
constexpr uint64_t k_max_memory_bytes = 1024ull * 1024 * 1024 * 1024;

/// Parses "512M", "2G", "65536K" or a plain number of MiB. `what` names the field in errors.
Result<uint64_t> parse_memory_size(std::string_view text, std::string_view what);
/// Parses a console setting: "stdio", "none" or "socket=PATH". `what` names the field in errors.
Result<void> parse_console(std::string_view text, std::string_view what, VmConfig& config);
/// The inverse of parse_console().
std::string console_to_string(const VmConfig& config);
/// Parses a virtio-console setting: "" or "serial" (output with the serial console's, no input)
/// or "socket=PATH". Turns the device on. `what` names the field in errors.
Result<void> parse_virtio_console(std::string_view text, std::string_view what, VmConfig& config);
/// Parses a display size "WIDTHxHEIGHT" (640x480 to 3840x2160) into the config.
Result<void> parse_display(std::string_view text, std::string_view what, VmConfig& config);
/// Parses a VNC address "unix:PATH" into `path`.
Result<void> parse_vnc_address(std::string_view text, std::string_view what, std::string& path);
/// Checks ranges and required fields; the message names the field and the allowed values.
Result<void> validate(const VmConfig& config);
/// Reads a JSON config ({"kernel": ..., "memory": "512M", "cpus": 2, ...}); unknown keys are errors.
Result<VmConfig> vm_config_from_json(const nlohmann::json& document);
/// The JSON form of a config (the inverse of vm_config_from_json).
nlohmann::json vm_config_to_json(const VmConfig& config);

}  // namespace corral::vmm
