#include "engine/engine.h"

#include <regex>

#include <fmt/format.h>

#include "engine/process.h"

namespace corral::engine {

namespace fs = std::filesystem;

const char* to_string(RunState state) {
    switch (state) {
        case RunState::Running:
            return "running";
        case RunState::Paused:
            return "paused";
    }
    return "unknown";
}

Result<void> validate_launch_spec(const LaunchSpec& spec) {
    std::error_code ec;
    if (spec.name.empty())
        return fail("name: a VM needs a name", EINVAL);
    if (spec.vcpus < 1 || spec.vcpus > 254)
        return fail(fmt::format("vcpus: {} is out of range (1 to 254)", spec.vcpus), EINVAL);
    if (spec.memory_mib < 16 || spec.memory_mib > 1024 * 1024)
        return fail(fmt::format("memory_mib: {} is out of range (16 to 1048576)", spec.memory_mib),
                    EINVAL);
    const bool no_display = spec.display_width == 0 && spec.display_height == 0;
    if (!no_display && (spec.display_width < 640 || spec.display_width > 3840 || spec.display_height < 480 ||
                        spec.display_height > 2160))
        return fail(fmt::format("display: {}x{} is out of range (640x480 to 3840x2160, or 0x0 for none)",
                                spec.display_width, spec.display_height),
                    EINVAL);
    if (spec.kernel.empty())
        return fail("kernel: no kernel given", EINVAL);
    if (!fs::is_regular_file(spec.kernel, ec))
        return fail(fmt::format("kernel: {} does not exist", spec.kernel.string()), ENOENT);
    if (!spec.initrd.empty() && !fs::is_regular_file(spec.initrd, ec))
        return fail(fmt::format("initrd: {} does not exist", spec.initrd.string()), ENOENT);
    if (spec.run_dir.empty())
        return fail("run_dir: no run directory given", EINVAL);
    // A unix socket path holds at most 107 bytes; console.sock is the longest name in run_dir.
    if ((spec.run_dir / "console.sock").string().size() > 107)
        return fail(
            fmt::format("run_dir: {} is too long for a unix socket path", spec.run_dir.string()),
            ENAMETOOLONG);

    if (!spec.migrate_listen.empty()) {
        bool tcp = spec.migrate_listen.starts_with("tcp:") && spec.migrate_listen.find(':', 4) != std::string::npos;
        bool unix_socket = spec.migrate_listen.starts_with("unix:/");
        if (!tcp && !unix_socket)
            return fail(fmt::format("migrate_listen: '{}' is not tcp:HOST:PORT or unix:/PATH", spec.migrate_listen),
                        EINVAL);
        if (!spec.restore_tag.empty() || !spec.restore_dir.empty())
            return fail("migrate_listen: a VM comes from a migration or from a snapshot, not both", EINVAL);
    }

    static const std::regex k_serial("[A-Za-z0-9._-]{0,20}");
    for (size_t i = 0; i < spec.disks.size(); ++i) {
        const DiskSpec& disk = spec.disks[i];
        if (disk.format != "raw" && disk.format != "qcow2")
            return fail(fmt::format("disks[{}].format: '{}' is not raw or qcow2", i, disk.format),
                        EINVAL);
        if (!fs::exists(disk.path, ec))
            return fail(fmt::format("disks[{}].path: {} does not exist", i, disk.path.string()),
                        ENOENT);
        if (!std::regex_match(disk.serial, k_serial))
            return fail(
                fmt::format(
                    "disks[{}].serial: '{}' must be up to 20 letters, digits, '.', '_' or '-'", i,
                    disk.serial),
                EINVAL);
    }
    static const std::regex k_mac("([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}");
    static const std::regex k_tap("[A-Za-z0-9._-]{1,15}");
    for (size_t i = 0; i < spec.nics.size(); ++i) {
        const NicSpec& nic = spec.nics[i];
        if (!std::regex_match(nic.tap, k_tap))
            return fail(fmt::format("nics[{}].tap: '{}' is not a tap device name (1-15 letters, "
                                    "digits, '.', '_', '-')",
                                    i, nic.tap),
                        EINVAL);
        if (!nic.mac.empty() && !std::regex_match(nic.mac, k_mac))
            return fail(
                fmt::format("nics[{}].mac: '{}' is not a MAC address like 52:54:00:12:34:56", i,
                            nic.mac),
                EINVAL);
    }
    return {};
}

namespace {

/// The first candidate that exists (and is executable, for programs), else `fallback`.
fs::path first_existing(const std::vector<fs::path>& candidates, bool executable,
                        const fs::path& fallback) {
    std::error_code ec;
    for (const auto& candidate : candidates) {
        if (executable ? is_executable(candidate) : fs::is_regular_file(candidate, ec))
            return candidate.lexically_normal();
    }
    return fallback;
}

fs::path on_path_or_name(const std::string& program) {
    fs::path found = find_on_path(program);
    return found.empty() ? fs::path(program) : found;
}

}  // namespace

EnginePaths EnginePaths::discover(const fs::path& self_exe) {
    fs::path dir = self_exe.parent_path();
    EnginePaths paths;
    // Installed side by side; the build tree (build/src/daemon/corrald, build/tests/unit_*,
    // build/tests/integration/engine/...); then PATH.
    paths.corral_vmm = first_existing(
        {dir / "corral-vmm", dir / "../vmm/corral-vmm", dir / "../src/vmm/corral-vmm",
         dir / "../../src/vmm/corral-vmm", dir / "../../../src/vmm/corral-vmm"},
        true, on_path_or_name("corral-vmm"));
    paths.corral_shim = first_existing(
        {dir / "corral-shim", dir / "../engine/corral-shim", dir / "../src/engine/corral-shim",
         dir / "../../src/engine/corral-shim", dir / "../../../src/engine/corral-shim",
         dir / "../libexec/corral/corral-shim"},
        true, on_path_or_name("corral-shim"));
    paths.qemu = on_path_or_name("qemu-system-x86_64");
    paths.calibration_guest = first_existing(
        {dir / "calibrate.elf", dir / "../../guests/tiny/calibrate.elf",
         dir / "../guests/tiny/calibrate.elf", dir / "../../../guests/tiny/calibrate.elf",
         dir / "../share/corral/calibrate.elf"},
        false, fs::path("calibrate.elf"));
    return paths;
}

std::unique_ptr<Engine> make_engine(const std::string& name, EnginePaths paths) {
    if (name == "native")
        return make_native_engine(std::move(paths));
    if (name == "emulated")
        return make_emulated_engine(std::move(paths));
    return nullptr;
}

}  // namespace corral::engine
