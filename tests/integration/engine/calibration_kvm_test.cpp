// Host calibration against real KVM: the calibrate tiny guest under corral-vmm.
#include "engine/calibration.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include <gtest/gtest.h>

namespace corral::engine {
namespace {

bool kvm_opens() {
    int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return false;
    ::close(fd);
    return true;
}

TEST(Calibration, MeasuresTheRing0LoopUnderKvm) {
    if (!kvm_opens()) {
        if (std::getenv("CORRAL_TEST_REQUIRE_KVM"))
            FAIL() << "/dev/kvm cannot be opened";
        GTEST_SKIP() << "/dev/kvm cannot be opened here (ctest's integration.engine.kvm.lab runs "
                        "this in tools/lab)";
    }
    EnginePaths paths;
    const char* vmm = std::getenv("CORRAL_VMM");  // a prebuilt monitor, to skip building one
    paths.corral_vmm = vmm ? vmm : CORRAL_VMM_PATH;
    paths.calibration_guest = CORRAL_CALIBRATION_GUEST;
    Calibration result = calibrate_host(paths);
    std::printf("calibration: kvm=%s ring0_loop_mips=%.2f default_engine=%s\n  %s\n",
                result.kvm.c_str(), result.ring0_loop_mips, result.default_engine.c_str(),
                result.reason.c_str());
    EXPECT_NE(result.kvm, "absent");
    EXPECT_GT(result.ring0_loop_mips, 0) << result.reason;
    EXPECT_NE(result.reason.find("M iterations/s"), std::string::npos) << result.reason;
    EXPECT_EQ(result.default_engine, result.kvm == "hardware" ? "native" : "emulated");
}

TEST(Calibration, AMissingGuestIsReportedNotFatal) {
    if (!kvm_opens())
        GTEST_SKIP() << "/dev/kvm cannot be opened here";
    EnginePaths paths;
    paths.corral_vmm = CORRAL_VMM_PATH;
    paths.calibration_guest = "/nonexistent/calibrate.elf";
    Calibration result = calibrate_host(paths);
    EXPECT_EQ(result.default_engine, "emulated");
    EXPECT_NE(result.reason.find("calibration guest not found at /nonexistent/calibrate.elf"),
              std::string::npos)
        << result.reason;
}

}  // namespace
}  // namespace corral::engine
