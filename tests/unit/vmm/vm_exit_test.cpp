#include "vmm/vm_exit.h"

#include <gtest/gtest.h>

namespace corral::vmm {
namespace {

TEST(ExitLatch, FirstExitWins) {
    ExitLatch latch(*EventFd::create());
    EXPECT_FALSE(latch.exit());
    latch.report({VmExitReason::Crash, "triple fault"});
    latch.report({VmExitReason::PowerOff, "late"});
    ASSERT_TRUE(latch.exit());
    EXPECT_EQ(latch.exit()->reason, VmExitReason::Crash);
    EXPECT_EQ(latch.exit()->detail, "triple fault");
}

TEST(ExitLatch, ExitCodes) {
    EXPECT_EQ(exit_code_for({VmExitReason::PowerOff, ""}), 0);
    EXPECT_EQ(exit_code_for({VmExitReason::Reset, ""}), 0);
    EXPECT_EQ(exit_code_for({VmExitReason::Crash, ""}), 1);
    EXPECT_EQ(exit_code_for({VmExitReason::Failure, ""}), 1);
}

}  // namespace
}  // namespace corral::vmm
