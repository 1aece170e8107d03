#include "daemon/host_capacity.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

namespace corral::daemon {
namespace {
namespace fs = std::filesystem;

inventory::VmRecord vm(const std::string& name, const std::string& state, int vcpus, int64_t memory_mib,
                       int64_t overhead = 0) {
    inventory::VmRecord record;
    record.name = name;
    record.state = state;
    record.vcpus = vcpus;
    record.memory_mib = memory_mib;
    record.limits.memory_overhead_mib = overhead;
    return record;
}

TEST(HostCapacityTest, OnlyVmsThatRunHoldResources) {
    std::vector<inventory::VmRecord> vms = {vm("a", "running", 2, 1024), vm("b", "paused", 1, 512, 256),
                                            vm("c", "stopped", 8, 8192), vm("d", "crashed", 8, 8192),
                                            vm("e", "starting", 1, 128)};
    const auto sum = allocated(vms);
    EXPECT_EQ(sum.vcpus, 4);
    EXPECT_EQ(sum.memory_mib, 1024 + 512 + 256 + 128);  // a memory cap's overhead is held too
    EXPECT_EQ(allocated(vms, "a").vcpus, 2);
}

TEST(HostCapacityTest, AStartOverThePolicyIsRefusedNamingTheResourceAndTheNumbers) {
    const CapacityPolicy policy{1, 50};
    const HostSize host{2, 4000};
    // 2 vCPUs and 2000 MiB allowed.
    EXPECT_EQ(admission_refusal(policy, host, {1, 0}, vm("web", "stopped", 1, 100)), std::nullopt);
    EXPECT_EQ(admission_refusal(policy, host, {1, 0}, vm("web", "stopped", 2, 100)).value(),
              "starting web would exceed this host's vCPU capacity: it needs 2 vCPUs, 1 are allocated to running VMs, "
              "and 2 are allowed (2 host CPUs x vcpus_per_cpu 1); 1 are free (corral host capacity)");
    EXPECT_EQ(admission_refusal(policy, host, {0, 1900}, vm("web", "stopped", 1, 64, 64)).value(),
              "starting web would exceed this host's memory capacity: it needs 128 MiB, 1900 MiB are allocated to "
              "running VMs, and 2000 MiB are allowed (memory_percent 50% of 4000 MiB); 100 MiB are free (corral host "
              "capacity)");
    EXPECT_EQ(admission_refusal(policy, host, {0, 1900}, vm("web", "stopped", 1, 100)), std::nullopt);  // exactly full
}

TEST(HostCapacityTest, ThePolicyFileRoundTripsAndDefaultsWhenAbsent) {
    char pattern[] = "/tmp/capacity-test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    const fs::path dir = pattern;
    EXPECT_EQ(load_capacity_policy(dir / "capacity.json").value(), CapacityPolicy{});
    EXPECT_EQ(CapacityPolicy{}.vcpus_per_cpu, 4u);
    EXPECT_EQ(CapacityPolicy{}.memory_percent, 90u);
    ASSERT_TRUE(save_capacity_policy(dir / "capacity.json", {8, 150}));
    EXPECT_EQ(load_capacity_policy(dir / "capacity.json").value(), (CapacityPolicy{8, 150}));
    std::ofstream(dir / "capacity.json") << R"({"vcpus_per_cpu": 0})";
    auto bad = load_capacity_policy(dir / "capacity.json");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("is not a capacity policy"), std::string::npos);
    fs::remove_all(dir);
}

TEST(HostCapacityTest, TheReportAddsUp) {
    std::vector<inventory::VmRecord> vms = {vm("a", "running", 3, 1024), vm("c", "stopped", 8, 8192)};
    auto json = capacity_json({4, 90}, {2, 10000}, vms, {0.44, 5000});
    EXPECT_EQ(json["vcpus"]["allowed"], 8);
    EXPECT_EQ(json["vcpus"]["allocated"], 3);
    EXPECT_EQ(json["vcpus"]["free"], 5);
    EXPECT_EQ(json["vcpus"]["used"], 0.4);
    EXPECT_EQ(json["memory_mib"]["allowed"], 9000);
    EXPECT_EQ(json["memory_mib"]["free"], 9000 - 1024);
    EXPECT_EQ(json["memory_mib"]["used"], 5000);
    ASSERT_EQ(json["vms"].size(), 1u);
    EXPECT_EQ(json["vms"][0]["name"], "a");
}

}  // namespace
}  // namespace corral::daemon
