#include "vmm/exit_history.h"

#include <linux/kvm.h>

#include <gtest/gtest.h>

namespace corral::vmm {
namespace {

TEST(ExitHistory, NamesTheLastExitsOldestFirst) {
    ExitHistory history;
    EXPECT_EQ(history.describe(), "no exits");
    history.note(KVM_EXIT_IO, 0x3f8, true);
    history.note(KVM_EXIT_MMIO, 0xfee00030, false);
    history.note(KVM_EXIT_HLT, 0, false);
    EXPECT_EQ(history.describe(), "3 exits; the last: io write 0x3f8, mmio read 0xfee00030, exit 5");
}

TEST(ExitHistory, KeepsOnlyTheLastEightButCountsThemAll) {
    ExitHistory history;
    for (uint64_t port = 0; port < 20; ++port) history.note(KVM_EXIT_IO, port, false);
    EXPECT_EQ(history.count(), 20u);
    EXPECT_EQ(history.describe(),
              "20 exits; the last: io read 0xc, io read 0xd, io read 0xe, io read 0xf, io read 0x10, "
              "io read 0x11, io read 0x12, io read 0x13");
}

}  // namespace
}  // namespace corral::vmm
