#include "daemon/nic_plumbing.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

inventory::VmRecord vm_with_nics() {
    inventory::VmRecord vm;
    vm.name = "a-rather-long-vm-name-for-a-tap";
    vm.nics = {{"br0", "", "52:54:00:00:00:01", "", "", {}}, {"", "mytap", "52:54:00:00:00:02", "", "", {}}, {"br1", "", "", "", "", {}}};
    return vm;
}

TEST(NicPlumbingTest, TapNamesAreShortStableAndPerNic) {
    auto name = NicPlumbing::tap_name_for("a-rather-long-vm-name-for-a-tap", 12);
    EXPECT_LE(name.size(), 15u);  // IFNAMSIZ - 1
    // Stable across builds: an older corrald's taps are found by name (FNV-1a of "web").
    EXPECT_EQ(NicPlumbing::tap_name_for("web", 0), "crl0fd9bc91n0");
    EXPECT_NE(NicPlumbing::tap_name_for("web", 1), NicPlumbing::tap_name_for("web", 0));
    EXPECT_NE(NicPlumbing::tap_name_for("web2", 0), NicPlumbing::tap_name_for("web", 0));
}

TEST(NicPlumbingTest, OnlyBridgeNicsGetTapsCorraldMade) {
    NicPlumbing plumbing;
    auto vm = vm_with_nics();
    EXPECT_EQ(plumbing.taps_created_for(vm),
              (std::vector<std::string>{NicPlumbing::tap_name_for(vm.name, 0), NicPlumbing::tap_name_for(vm.name, 2)}));
    EXPECT_EQ(plumbing.host_tap(vm, 0), NicPlumbing::tap_name_for(vm.name, 0));
    EXPECT_EQ(plumbing.host_tap(vm, 1), "mytap");
}

TEST(NicPlumbingTest, NicsOnExistingTapsNeedNoPlumbing) {
    NicPlumbing plumbing;
    inventory::VmRecord vm;
    vm.name = "web";
    vm.nics = {{"", "tap7", "52:54:00:00:00:07", "", "", {}}};
    auto plugged = plumbing.plug(vm);
    ASSERT_TRUE(plugged) << plugged.error().describe();
    ASSERT_EQ(plugged->nics.size(), 1u);
    EXPECT_EQ(plugged->nics[0].tap, "tap7");
    EXPECT_EQ(plugged->nics[0].mac, "52:54:00:00:00:07");
    EXPECT_TRUE(plugged->created_taps.empty());
}

}  // namespace
}  // namespace corral::daemon
