#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "engine/engine.h"

namespace corral::engine {

/// What the host's KVM can do, measured (see DESIGN.md "Engines").
struct Calibration {
    std::string kvm;  ///< "absent", "emulated" (KVM runs ring 0 far below speed) or "hardware"
    double ring0_loop_mips =
        0;  ///< ring-0 add/dec/jnz loop, million iterations per second (0: not measured)
    std::string default_engine;  ///< "native" or "emulated"
    std::string reason;          ///< one sentence with the measurement
};

/// Below this many million ring-0 loop iterations per second KVM counts as emulated (hardware
/// runs ~1000, PVM ~0.5).
inline constexpr double k_hardware_min_mips = 50.0;

/// Measures the host: no /dev/kvm -> absent; else runs the calibrate tiny guest
/// (paths.calibration_guest) under corral-vmm, bounded by `timeout`, and classifies the speed.
/// Never fails: a calibration that cannot run says why in `reason` and picks "emulated".
Calibration calibrate_host(const EnginePaths& paths,
                           std::chrono::seconds timeout = std::chrono::seconds(60));

/// The classification from a measured speed (exposed for tests).
Calibration classify_ring0_speed(double mips);

/// Parses "CALIBRATE-END iterations=N tsc=C"; 0 when `line` is not that line.
uint64_t parse_calibrate_end(std::string_view line);

}  // namespace corral::engine
