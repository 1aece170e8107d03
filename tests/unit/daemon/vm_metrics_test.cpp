#include "daemon/vm_metrics.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

TEST(VmMetricsTest, CpuTicksAreUtimePlusStimeAfterTheCommandName) {
    // A command name with spaces and parentheses: fields count from after the last ')'.
    std::string stat = "4242 (qemu (x) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 100 1000 10";
    EXPECT_EQ(cpu_ticks_from_proc_stat(stat), 300u);
}

TEST(VmMetricsTest, NoNumbersFromTextThatIsNotAStatLine) {
    EXPECT_EQ(cpu_ticks_from_proc_stat(""), std::nullopt);
    EXPECT_EQ(cpu_ticks_from_proc_stat("1 (x)"), std::nullopt);
    EXPECT_EQ(cpu_ticks_from_proc_stat("1 (x) S 1 2"), std::nullopt);
    EXPECT_EQ(cpu_ticks_from_proc_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 lots 5"), std::nullopt);
}

}  // namespace
}  // namespace corral::daemon
