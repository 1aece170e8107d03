#include "engine/calibration.h"

#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace corral::engine {
namespace {

TEST(Calibration, ParsesTheGuestsLastLine) {
    EXPECT_EQ(parse_calibrate_end("CALIBRATE-END iterations=250000 tsc=1043322110"), 250000u);
    EXPECT_EQ(parse_calibrate_end("\rCALIBRATE-END iterations=511750000 tsc=5"), 511750000u);
    EXPECT_EQ(parse_calibrate_end("CALIBRATE-START"), 0u);
    EXPECT_EQ(parse_calibrate_end("CALIBRATE-END iterations=x"), 0u);
}

TEST(Calibration, ClassifiesBySpeed) {
    Calibration slow = classify_ring0_speed(0.52);
    EXPECT_EQ(slow.kvm, "emulated");
    EXPECT_EQ(slow.default_engine, "emulated");
    EXPECT_DOUBLE_EQ(slow.ring0_loop_mips, 0.52);
    EXPECT_NE(slow.reason.find("0.52 M iterations/s"), std::string::npos) << slow.reason;

    Calibration fast = classify_ring0_speed(980);
    EXPECT_EQ(fast.kvm, "hardware");
    EXPECT_EQ(fast.default_engine, "native");
    EXPECT_NE(fast.reason.find("980 M iterations/s"), std::string::npos) << fast.reason;
}

TEST(Calibration, NoKvmIsAbsent) {
    int kvm = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (kvm >= 0) {
        ::close(kvm);
        GTEST_SKIP() << "this host has /dev/kvm (tests/integration/engine measures it)";
    }
    Calibration result = calibrate_host(EnginePaths{});
    EXPECT_EQ(result.kvm, "absent");
    EXPECT_EQ(result.default_engine, "emulated");
    EXPECT_EQ(result.ring0_loop_mips, 0);
    EXPECT_NE(result.reason.find("/dev/kvm"), std::string::npos) << result.reason;
}

}  // namespace
}  // namespace corral::engine
