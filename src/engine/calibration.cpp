#include "engine/calibration.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "engine/process.h"

namespace corral::engine {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

/// The calibrate guest's first lap (guests/tiny/calibrate.S FIRST_LAP).
constexpr uint64_t k_first_lap = 250000;

Calibration unmeasured(const std::string& why) {
    return {
        "emulated", 0, "emulated",
        fmt::format("/dev/kvm is present but could not be measured ({}); using the emulated engine",
                    why)};
}

}  // namespace

uint64_t parse_calibrate_end(std::string_view line) {
    constexpr std::string_view k_prefix = "CALIBRATE-END iterations=";
    size_t at = line.find(k_prefix);
    if (at == std::string_view::npos)
        return 0;
    std::string_view digits = line.substr(at + k_prefix.size());
    uint64_t value = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (ec != std::errc() || end == digits.data())
        return 0;
    return value;
}

Calibration classify_ring0_speed(double mips) {
    if (mips < k_hardware_min_mips) {
        return {
            "emulated", mips, "emulated",
            fmt::format(
                "a ring-0 loop ran at {:.2f} M iterations/s under KVM (hardware: ~1000 M/s, native "
                "needs "
                ">= {:.0f}): KVM here emulates kernel mode, so the emulated engine is the default",
                mips, k_hardware_min_mips)};
    }
    return {"hardware", mips, "native",
            fmt::format("a ring-0 loop ran at {:.0f} M iterations/s under KVM: hardware speed, so "
                        "the native engine is "
                        "the default",
                        mips)};
}

Calibration calibrate_host(const EnginePaths& paths, std::chrono::seconds timeout) {
    UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
    if (!kvm.valid()) {
        if (errno == ENOENT)
            return {"absent", 0, "emulated",
                    "no /dev/kvm on this host, so VMs run on the emulated engine (QEMU TCG)"};
        return {"absent", 0, "emulated",
                fmt::format(
                    "/dev/kvm cannot be opened ({}), so VMs run on the emulated engine (QEMU TCG)",
                    std::strerror(errno))};
    }
    kvm.reset();
    fs::path vmm = find_on_path(paths.corral_vmm.string());
    if (vmm.empty())
        return unmeasured(fmt::format("corral-vmm not found at {}", paths.corral_vmm.string()));
    std::error_code ec;
    if (!fs::is_regular_file(paths.calibration_guest, ec))
        return unmeasured(
            fmt::format("calibration guest not found at {}", paths.calibration_guest.string()));

    std::optional<Clock::time_point> started;
    std::optional<Clock::time_point> ended;
    uint64_t iterations = 0;
    auto run = run_capture(
        {vmm.string(), "--kernel", paths.calibration_guest.string(), "--memory", "64M", "--cpus",
         "1", "--console", "stdio"},
        std::chrono::duration_cast<std::chrono::milliseconds>(timeout), [&](std::string_view line) {
            auto now = Clock::now();
            if (!started && line.find("CALIBRATE-START") != std::string_view::npos)
                started = now;
            if (started && !ended) {
                if (uint64_t n = parse_calibrate_end(line)) {
                    ended = now;
                    iterations = n;
                }
            }
        });
    if (!run)
        return unmeasured(run.error().describe());
    if (started && ended) {
        double seconds = std::chrono::duration<double>(*ended - *started).count();
        if (seconds <= 0)
            seconds = 1e-6;
        return classify_ring0_speed(static_cast<double>(iterations) / seconds / 1e6);
    }
    if (started && run->timed_out) {
        // Not even the first lap finished: an upper bound is all we know, and it is slow.
        double seconds = std::chrono::duration<double>(Clock::now() - *started).count();
        Calibration result = classify_ring0_speed(static_cast<double>(k_first_lap) / seconds / 1e6);
        result.reason = fmt::format(
            "a ring-0 loop under KVM did not finish {} iterations in {:.0f} s (< {:.3f} M/s): "
            "KVM here emulates kernel mode, so the emulated engine is the default",
            k_first_lap, seconds, result.ring0_loop_mips);
        return result;
    }
    std::string output =
        run->output.size() > 300 ? run->output.substr(run->output.size() - 300) : run->output;
    while (!output.empty() && (output.back() == '\n' || output.back() == '\r'))
        output.pop_back();
    return unmeasured(fmt::format(
        "corral-vmm {} before the calibration guest reported: {}",
        run->timed_out ? "timed out" : fmt::format("exited with code {}", run->exit_code),
        output.empty() ? "no output" : output));
}

}  // namespace corral::engine
