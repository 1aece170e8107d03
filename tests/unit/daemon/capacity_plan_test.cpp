#include "daemon/capacity_plan.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

/// `count` samples a minute apart from `start`, with `cpus` and `memory_mib` as functions of the
/// sample's index.
UsageSeries series(size_t count, double (*cpus)(size_t), double (*memory_mib)(size_t), double start = 1.7e9) {
    UsageSeries usage;
    for (size_t i = 0; i < count; ++i) {
        usage.time.push_back(start + 60.0 * static_cast<double>(i));
        usage.cpus.push_back(cpus(i));
        usage.memory_mib.push_back(memory_mib(i));
    }
    return usage;
}

const nlohmann::json& resource(const nlohmann::json& plan, const std::string& name) {
    for (const auto& each : plan["resources"])
        if (each["resource"] == name) return each;
    throw std::runtime_error("no resource " + name);
}

TEST(CapacityPlanTest, Percentile95IsTheNearestRankAndSkipsGaps) {
    std::vector<std::optional<double>> values;
    for (int i = 1; i <= 100; ++i) values.push_back(i);
    values.push_back(std::nullopt);
    EXPECT_EQ(percentile95(values), 95);  // rank ceil(0.95 x 100) = 95
    EXPECT_EQ(percentile95({3.0, std::nullopt, 1.0, 2.0}), 3);  // rank ceil(2.85) = 3 of 3
    EXPECT_EQ(percentile95({std::nullopt}), std::nullopt);
}

TEST(CapacityPlanTest, GrowthIsTheLeastSquaresSlopePerDay) {
    // 1 MiB a minute is 1440 MiB a day, whatever the noise that averages out.
    const auto usage = series(61, [](size_t) { return 0.0; },
                              [](size_t i) { return 1000.0 + static_cast<double>(i) + (i % 2 ? 3.0 : -3.0); });
    EXPECT_NEAR(growth_per_day(usage.time, usage.memory_mib).value(), 1440.0, 1.0);
    EXPECT_EQ(growth_per_day({1.0}, {5.0}), std::nullopt);
    EXPECT_EQ(growth_per_day({1.0, 1.0}, {5.0, 6.0}), std::nullopt);  // no time between them
}

// Worked by hand: a host of 8 CPUs and 16384 MiB, policy 4 vCPUs per CPU and 90% of memory
// (32 vCPUs and 14745 MiB allowed; 14745.6 MiB of memory to use). Two running VMs of 2 vCPUs and
// 2048 MiB: a uses 1.0 CPU and 1024 MiB at its 95th percentile, b 0.5 CPU and 1024 MiB. The host
// uses 2.0 CPUs and 4096 MiB at its 95th percentile. The VMs use 1.5 of their 4 vCPUs (0.375 per
// vCPU) and 2048 of their 4096 MiB (0.5): a new VM of 2 vCPUs and 2048 MiB is expected to use 0.75
// CPU and 1024 MiB.
//   cpu by use: (8 - 2.0) / 0.75 = 8; by policy: (32 - 4) / 2 = 14
//   memory by use: (14745.6 - 4096) / 1024 = 10.4 -> 10; by policy: (14745 - 4096) / 2048 = 5.2 -> 5
// So 5 fit, and memory runs out first, by the policy.
PlanInput worked_example() {
    PlanInput input;
    input.policy = CapacityPolicy{4, 90};
    input.host = HostSize{8, 16384};
    // 94 quiet samples, then 2.0 CPUs and 4096 MiB rising: the 95th of 100 is the first of those.
    input.host_usage = series(100, [](size_t i) { return i < 94 ? 1.0 : 2.0 + static_cast<double>(i - 94); },
                              [](size_t i) { return i < 94 ? 3000.0 : 4096.0 + static_cast<double>(i - 94); });
    input.vms.push_back({"a", {2, 2048}, true, series(100, [](size_t) { return 1.0; }, [](size_t) { return 1024.0; })});
    input.vms.push_back({"b", {2, 2048}, true, series(100, [](size_t) { return 0.5; }, [](size_t) { return 1024.0; })});
    input.shape = {2, 2048};
    return input;
}

TEST(CapacityPlanTest, TheWorkedExampleGivesTheHandComputedAnswer) {
    const auto plan = plan_capacity(worked_example()).value();
    EXPECT_EQ(plan["fits"], 5);
    EXPECT_EQ(plan["first_to_run_out"], "memory");
    EXPECT_EQ(plan["limited_by"], "overcommit policy");
    EXPECT_EQ(plan["summary"], "5 more VMs of 2 vCPUs / 2048 MiB fit; memory runs out first, by the overcommit policy");
    const auto& cpu = resource(plan, "cpu");
    EXPECT_EQ(cpu["used_p95"], 2.0);
    EXPECT_EQ(cpu["use_per_allocated"], 0.375);
    EXPECT_EQ(cpu["expected_per_vm"], 0.75);
    EXPECT_EQ(cpu["fits_by_use"], 8);
    EXPECT_EQ(cpu["fits_by_policy"], 14);
    const auto& memory = resource(plan, "memory");
    EXPECT_EQ(memory["capacity"], 14745.6);
    EXPECT_EQ(memory["used_p95"], 4096.0);
    EXPECT_EQ(memory["expected_per_vm"], 1024.0);
    EXPECT_EQ(memory["fits_by_use"], 10);
    EXPECT_EQ(memory["fits_by_policy"], 5);
    EXPECT_EQ(plan["vms"][0]["cpu_p95"], 1.0);
    EXPECT_EQ(plan["history"]["samples"], 100);
    EXPECT_EQ(plan["history"]["seconds"], 99 * 60);
}

TEST(CapacityPlanTest, WhatIfAddAndRemoveChangeTheAnswer) {
    auto input = worked_example();
    // 2 more of 2 vCPUs / 2048 MiB: policy memory (14745 - 8192) / 2048 = 3.2 -> 3.
    input.what_ifs.push_back({2, {2, 2048}, ""});
    auto plan = plan_capacity(input).value();
    EXPECT_EQ(plan["fits"], 3);
    EXPECT_EQ(plan["what_if"][0], "add 2 x 2 vCPUs / 2048 MiB");
    EXPECT_EQ(resource(plan, "memory")["used_p95"], 4096.0 + 2 * 1024.0);
    // Without a: policy memory (14745 - 2048) / 2048 = 6.2 -> 6; cpu by use (8 - 1.0) / 0.75 = 9.
    input.what_ifs = {{0, {}, "a"}};
    plan = plan_capacity(input).value();
    EXPECT_EQ(plan["fits"], 6);
    EXPECT_EQ(resource(plan, "cpu")["fits_by_use"], 9);
    EXPECT_EQ(plan["what_if"][0], "remove a");
    input.what_ifs = {{0, {}, "nope"}};
    const auto refused = plan_capacity(input);
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().kind(), ErrorKind::NotFound);
    EXPECT_EQ(refused.error().message(), "what-if: no VM named nope to remove");
}

TEST(CapacityPlanTest, MeasuredUseCanBindBeforeThePolicy) {
    auto input = worked_example();
    input.policy = CapacityPolicy{64, 100};
    input.host = HostSize{4, 65536};
    // cpu by use: (4 - 2.0) / 0.75 = 2.67 -> 2; by policy (256 - 4) / 2 = 126.
    const auto plan = plan_capacity(input).value();
    EXPECT_EQ(plan["fits"], 2);
    EXPECT_EQ(plan["first_to_run_out"], "cpu");
    EXPECT_EQ(plan["limited_by"], "measured use");
}

TEST(CapacityPlanTest, AGrowingHostIsFullWhenTheTrendSaysAndAShortHistoryGivesNoDate) {
    PlanInput input;
    input.policy = CapacityPolicy{4, 100};
    input.host = HostSize{2, 10000};
    // Memory grows 1 MiB a minute (1440 a day) from 1000 MiB, over two hours: its 95th percentile
    // is the 114th smallest of 120 (1113 MiB), so (10000 - 1113) / 1440 = 6.17 days.
    input.host_usage = series(120, [](size_t) { return 0.5; }, [](size_t i) { return 1000.0 + static_cast<double>(i); });
    auto plan = plan_capacity(input).value();
    EXPECT_NEAR(resource(plan, "memory")["growth_per_day"].get<double>(), 1440.0, 0.01);
    EXPECT_EQ(resource(plan, "memory")["full_in_days"], 6.2);
    EXPECT_TRUE(resource(plan, "cpu")["full_in_days"].is_null());  // flat: never at this rate
    EXPECT_EQ(plan["notes"][0], "no VM has a history yet: a new VM is counted at its full size");
    input.host_usage = series(30, [](size_t) { return 0.5; }, [](size_t i) { return 1000.0 + static_cast<double>(i); });
    plan = plan_capacity(input).value();
    EXPECT_TRUE(resource(plan, "memory")["full_in_days"].is_null());
    EXPECT_TRUE(resource(plan, "memory")["growth_per_day"].is_null());  // half an hour of a boot is no trend
    EXPECT_EQ(plan["notes"][1],
              "1740 s of history: at least an hour is needed to measure growth and project when a resource runs out");
}

}  // namespace
}  // namespace corral::daemon
