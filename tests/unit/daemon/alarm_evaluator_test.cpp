#include "daemon/alarm_evaluator.h"

#include <unistd.h>

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

using Readings = AlarmEvaluator::Readings;

/// A VM's cumulative counters at time `t`: `cpu` CPU-seconds used, `written` bytes written.
MetricsSample at(double t, double cpu, uint64_t written = 0) {
    MetricsSample sample;
    sample.time = t;
    sample.cpu_seconds = cpu;
    sample.disk_write_bytes = written;
    sample.memory_bytes = 512ull << 20;
    return sample;
}

AlarmRule cpu_above(double threshold, uint64_t for_seconds, std::optional<std::string> vm = std::nullopt) {
    AlarmRule rule;
    rule.name = "busy";
    rule.metric = "vm.cpu";
    rule.vm = std::move(vm);
    rule.direction = AlarmDirection::Above;
    rule.threshold = threshold;
    rule.for_seconds = for_seconds;
    return rule;
}

TEST(AlarmMetrics, RatesComeFromTwoSamples) {
    MetricsSample before = at(100, 10, 1000), after = at(110, 15, 6000);
    before.vcpus = after.vcpus = 2;
    before.vcpu_run_delay_seconds = 1;
    after.vcpu_run_delay_seconds = 5;
    after.disk_write_ops = 10;
    after.disk_write_time_ns = 30'000'000;                                      // 10 writes in 30 ms
    EXPECT_DOUBLE_EQ(*metric_value("vm.cpu", before, after, 4), 0.5);           // 5 CPU-s in 10 s
    EXPECT_DOUBLE_EQ(*metric_value("vm.disk_write", before, after, 4), 500.0);  // 5000 bytes in 10 s
    EXPECT_DOUBLE_EQ(*metric_value("vm.run_delay", before, after, 4), 0.2);     // 4 s of 2 vCPUs x 10 s
    EXPECT_DOUBLE_EQ(*metric_value("vm.disk_write_latency", before, after, 4), 3.0);
    EXPECT_DOUBLE_EQ(*metric_value("vm.memory", before, after, 4), double(512ull << 20));
    // The host's busy CPU-seconds over 4 CPUs: 5 of 40 is an eighth busy.
    EXPECT_DOUBLE_EQ(*metric_value("host.cpu", before, after, 4), 0.125);
    // No write in between is no latency, not an infinitely slow disk.
    EXPECT_FALSE(metric_value("vm.disk_write_latency", before, before, 4));  // no interval at all
    EXPECT_DOUBLE_EQ(*metric_value("vm.disk_write_latency", before, at(110, 10, 1000), 4), 0.0);
    // A counter that went back (the VM restarted between) is not a negative rate.
    EXPECT_DOUBLE_EQ(*metric_value("vm.cpu", after, at(120, 1), 4), 0.0);
    EXPECT_FALSE(metric_value("vm.cpu", after, before, 4));  // no interval
}

TEST(AlarmEvaluator, FiresOnlyOnceTheBreachHasHeldForItsDuration) {
    AlarmEvaluator evaluator(2);
    const std::vector<AlarmRule> rules = {cpu_above(0.5, 20)};
    // web uses 0.9 CPUs from t=100 on; db idles.
    auto tick = [](int n) {
        const double t = 100 + n * 10.0;
        return Readings{{"web", at(t, n * 9.0)}, {"db", at(t, n * 0.1)}};
    };
    EXPECT_TRUE(evaluator.observe(rules, tick(0), std::nullopt).empty());  // first samples: no interval
    EXPECT_TRUE(evaluator.observe(rules, tick(1), std::nullopt).empty());  // breached 10 s (100..110)
    const auto* states = evaluator.targets("busy");
    ASSERT_NE(states, nullptr);
    EXPECT_EQ(states->at("web").breached_since, 100.0);
    EXPECT_FALSE(states->at("web").firing_since);
    EXPECT_FALSE(states->at("db").breached_since);
    auto events = evaluator.observe(rules, tick(2), std::nullopt);  // 20 s: fires
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0]["kind"], "alarm.firing");
    EXPECT_EQ(events[0]["alarm"], "busy");
    EXPECT_EQ(events[0]["target"], "web");
    EXPECT_EQ(events[0]["metric"], "vm.cpu");
    EXPECT_DOUBLE_EQ(events[0]["value"].get<double>(), 0.9);
    EXPECT_DOUBLE_EQ(events[0]["threshold"].get<double>(), 0.5);
    EXPECT_EQ(events[0]["message"], "alarm busy: vm.cpu of web is 0.9 (CPUs used), above 0.5 for 20 s");
    EXPECT_EQ(evaluator.targets("busy")->at("web").firing_since, 120.0);
    // Still breached: no second event.
    EXPECT_TRUE(evaluator.observe(rules, tick(3), std::nullopt).empty());
}

TEST(AlarmEvaluator, OneCalmIntervalStartsTheHoldAgain) {
    AlarmEvaluator evaluator(2);
    const std::vector<AlarmRule> rules = {cpu_above(0.5, 20, "web")};
    double cpu = 0;
    auto tick = [&cpu](double t, double used) {
        cpu += used;
        return Readings{{"web", at(t, cpu)}};
    };
    EXPECT_TRUE(evaluator.observe(rules, tick(100, 0), std::nullopt).empty());
    EXPECT_TRUE(evaluator.observe(rules, tick(110, 9), std::nullopt).empty());
    EXPECT_TRUE(evaluator.observe(rules, tick(120, 1), std::nullopt).empty());  // calm: the count restarts
    EXPECT_TRUE(evaluator.observe(rules, tick(130, 9), std::nullopt).empty());  // 10 s held
    EXPECT_EQ(evaluator.targets("busy")->at("web").breached_since, 120.0);
    EXPECT_EQ(evaluator.observe(rules, tick(140, 9), std::nullopt).size(), 1u);  // 20 s held
}

TEST(AlarmEvaluator, ForZeroFiresOnTheFirstBreachAndResolvesWhenBackUnder) {
    AlarmEvaluator evaluator(2);
    const std::vector<AlarmRule> rules = {cpu_above(0.5, 0)};
    EXPECT_TRUE(evaluator.observe(rules, {{"web", at(100, 0)}}, std::nullopt).empty());
    auto fired = evaluator.observe(rules, {{"web", at(110, 8)}}, std::nullopt);
    ASSERT_EQ(fired.size(), 1u);
    EXPECT_EQ(fired[0]["kind"], "alarm.firing");
    // Exactly at the threshold is not above it.
    auto resolved = evaluator.observe(rules, {{"web", at(120, 13)}}, std::nullopt);
    ASSERT_EQ(resolved.size(), 1u);
    EXPECT_EQ(resolved[0]["kind"], "alarm.resolved");
    EXPECT_EQ(resolved[0]["target"], "web");
    EXPECT_DOUBLE_EQ(resolved[0]["value"].get<double>(), 0.5);
    EXPECT_EQ(resolved[0]["message"], "alarm busy: vm.cpu of web is 0.5, back at or under 0.5");
    EXPECT_FALSE(evaluator.targets("busy")->at("web").firing_since);
}

TEST(AlarmEvaluator, AFiringVmThatStopsOrIsDeletedResolves) {
    AlarmEvaluator evaluator(2);
    const std::vector<AlarmRule> rules = {cpu_above(0.5, 0)};
    evaluator.observe(rules, {{"web", at(100, 0)}, {"db", at(100, 0)}}, std::nullopt);
    ASSERT_EQ(evaluator.observe(rules, {{"web", at(110, 9)}, {"db", at(110, 9)}}, std::nullopt).size(), 2u);
    // web stops (still in the inventory, no sample); db is deleted (gone from the list).
    auto events = evaluator.observe(rules, {{"web", std::nullopt}}, std::nullopt);
    ASSERT_EQ(events.size(), 2u);
    std::map<std::string, nlohmann::json> by_target;
    for (auto& event : events)
        by_target[event["target"]] = event;
    EXPECT_EQ(by_target["web"]["kind"], "alarm.resolved");
    EXPECT_TRUE(by_target["web"]["value"].is_null());
    EXPECT_EQ(by_target["web"]["message"], "alarm busy: web stopped");
    EXPECT_EQ(by_target["db"]["message"], "alarm busy: db was deleted");
    EXPECT_TRUE(evaluator.targets("busy")->empty());
    // Started again: its first sample makes no interval with the one before it stopped.
    EXPECT_TRUE(evaluator.observe(rules, {{"web", at(200, 50)}}, std::nullopt).empty());
    EXPECT_EQ(evaluator.observe(rules, {{"web", at(210, 59)}}, std::nullopt).size(), 1u);
}

TEST(AlarmEvaluator, BelowAndHostRules) {
    AlarmEvaluator evaluator(4);
    AlarmRule idle;
    idle.name = "idle-host";
    idle.metric = "host.cpu";
    idle.direction = AlarmDirection::Below;
    idle.threshold = 0.25;
    AlarmRule memory;
    memory.name = "mem";
    memory.metric = "host.memory";
    memory.threshold = 1e9;
    const std::vector<AlarmRule> rules = {idle, memory};
    MetricsSample host = at(100, 0);
    host.memory_bytes = 2'000'000'000;
    evaluator.observe(rules, {}, host);
    host = at(110, 4);  // 4 busy CPU-seconds of 40: 10%
    host.memory_bytes = 2'000'000'000;
    auto events = evaluator.observe(rules, {}, host);
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0]["alarm"], "idle-host");
    EXPECT_EQ(events[0]["target"], "host");
    EXPECT_DOUBLE_EQ(events[0]["value"].get<double>(), 0.1);
    EXPECT_DOUBLE_EQ(events[0]["below"].get<double>(), 0.25);
    EXPECT_EQ(events[1]["alarm"], "mem");
    EXPECT_EQ(events[1]["message"],
              "alarm mem: host.memory of the host is 2000000000 (bytes used), above 1000000000 for 10 s");
}

TEST(AlarmEvaluator, ADeletedRuleForgetsItsState) {
    AlarmEvaluator evaluator(2);
    evaluator.observe({cpu_above(0.5, 0)}, {{"web", at(100, 0)}}, std::nullopt);
    evaluator.observe({cpu_above(0.5, 0)}, {{"web", at(110, 9)}}, std::nullopt);
    ASSERT_NE(evaluator.targets("busy"), nullptr);
    EXPECT_TRUE(evaluator.observe({}, {{"web", at(120, 18)}}, std::nullopt).empty());
    EXPECT_EQ(evaluator.targets("busy"), nullptr);
}

TEST(AlarmRules, JsonRoundTripAndFile) {
    AlarmRule rule = cpu_above(0.8, 60, "web");
    rule.webhook = "http://127.0.0.1:9/hook";
    rule.created_at = "2026-12-06T00:00:00Z";
    auto json = alarm_rule_json(rule);
    EXPECT_EQ(json["above"], 0.8);
    EXPECT_TRUE(json["below"].is_null());
    auto back = alarm_rule_from_json(json);
    ASSERT_TRUE(back) << back.error().message();
    EXPECT_EQ(alarm_rule_json(*back), json);
    EXPECT_FALSE(alarm_rule_from_json({{"name", "x"}, {"metric", "vm.nope"}, {"above", 1}}));

    auto dir = std::filesystem::temp_directory_path() / ("alarm-file-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    AlarmFile file(dir / "alarms.json");
    EXPECT_TRUE(file.load()->empty());  // no file yet: no rules
    ASSERT_TRUE(file.save({rule}));
    auto loaded = file.load();
    ASSERT_TRUE(loaded);
    ASSERT_EQ(loaded->size(), 1u);
    EXPECT_EQ(alarm_rule_json(loaded->front()), json);
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace corral::daemon
