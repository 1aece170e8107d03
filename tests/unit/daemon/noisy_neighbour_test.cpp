#include "daemon/noisy_neighbour.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

/// One VM's cumulative counters at time `t`: `cpu` CPU-seconds used, `delay` run-delay seconds.
MetricsSample at(double t, double cpu, double delay, unsigned vcpus = 1) {
    MetricsSample sample;
    sample.time = t;
    sample.cpu_seconds = cpu;
    sample.vcpu_run_delay_seconds = delay;
    sample.vcpus = vcpus;
    return sample;
}

using Readings = NoisyNeighbourWatch::Readings;

// The victim waits 40% of each 10 s interval; the hog uses 1.5 CPUs; a third VM idles.
Readings tick(int n, double victim_delay_per_interval = 4.0) {
    const double t = 1000 + n * 10.0;
    return {{"victim", at(t, n * 5.0, n * victim_delay_per_interval)},
            {"hog", at(t, n * 15.0, 0)},
            {"idle", at(t, n * 0.1, 0)}};
}

TEST(NoisyNeighbour, RaisedAfterThreeSufferingIntervalsNamingTheBusiestOther) {
    NoisyNeighbourWatch watch;
    EXPECT_TRUE(watch.observe(tick(0)).empty());  // the first samples make no interval
    EXPECT_TRUE(watch.observe(tick(1)).empty());
    EXPECT_TRUE(watch.observe(tick(2)).empty());
    auto events = watch.observe(tick(3));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0]["kind"], "vm.noisy_neighbour");
    EXPECT_EQ(events[0]["target"], "victim");
    EXPECT_EQ(events[0]["neighbour"], "hog");
    EXPECT_DOUBLE_EQ(events[0]["run_delay"].get<double>(), 0.4);       // 4 s of 10
    EXPECT_DOUBLE_EQ(events[0]["neighbour_cpus"].get<double>(), 1.5);  // 15 s of CPU per 10 s
    EXPECT_NE(events[0]["message"].get<std::string>().find("victim waited for a host CPU 40% of its vCPUs' time over "
                                                            "the last 30 s while hog used 1.50 CPUs"),
              std::string::npos)
        << events[0]["message"];
    // Once: not again while it goes on.
    EXPECT_TRUE(watch.observe(tick(4)).empty());
    EXPECT_TRUE(watch.observe(tick(5)).empty());
}

TEST(NoisyNeighbour, ClearedAfterThreeFineIntervals) {
    NoisyNeighbourWatch watch;
    for (int n = 0; n <= 3; ++n) (void)watch.observe(tick(n));
    // From here the victim waits 0.2 s per 10 s (2%): fine.
    auto calm = [](int n) {
        const double t = 1000 + n * 10.0;
        return Readings{{"victim", at(t, n * 5.0, 12.0 + (n - 3) * 0.2)}, {"hog", at(t, n * 15.0, 0)}};
    };
    EXPECT_TRUE(watch.observe(calm(4)).empty());
    EXPECT_TRUE(watch.observe(calm(5)).empty());
    auto events = watch.observe(calm(6));
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0]["kind"], "vm.noisy_neighbour.cleared");
    EXPECT_EQ(events[0]["target"], "victim");
}

TEST(NoisyNeighbour, NoEventWithoutANoisyNeighbourOrWithoutAStreak) {
    // Run delay without another busy VM (the host's own processes): not a neighbour's doing.
    NoisyNeighbourWatch alone;
    for (int n = 0; n <= 5; ++n) {
        const double t = 1000 + n * 10.0;
        EXPECT_TRUE(alone.observe({{"victim", at(t, n * 5.0, n * 4.0)}, {"quiet", at(t, n * 2.0, 0)}}).empty())
            << n;  // quiet uses 0.2 CPUs: below a quarter of a CPU
    }
    // Suffering every other interval is not "in a row".
    NoisyNeighbourWatch bursts;
    double delay = 0;
    for (int n = 0; n <= 8; ++n) {
        const double t = 1000 + n * 10.0;
        delay += n % 2 ? 4.0 : 0.0;
        EXPECT_TRUE(bursts.observe({{"victim", at(t, n * 5.0, delay)}, {"hog", at(t, n * 15.0, 0)}}).empty()) << n;
    }
}

TEST(NoisyNeighbour, RunDelayIsPerVcpu) {
    // 4 s of waiting per 10 s over 4 vCPUs is 10% each: just at the threshold.
    NoisyNeighbourWatch watch;
    std::vector<nlohmann::json> events;
    for (int n = 0; n <= 3; ++n) {
        const double t = 1000 + n * 10.0;
        events = watch.observe({{"wide", at(t, n * 5.0, n * 4.0, 4)}, {"hog", at(t, n * 10.0, 0)}});
    }
    ASSERT_EQ(events.size(), 1u);
    EXPECT_DOUBLE_EQ(events[0]["run_delay"].get<double>(), 0.1);
    // With 8 vCPUs the same waiting is 5% each: nothing.
    NoisyNeighbourWatch wider;
    for (int n = 0; n <= 5; ++n) {
        const double t = 1000 + n * 10.0;
        EXPECT_TRUE(wider.observe({{"wide", at(t, n * 5.0, n * 4.0, 8)}, {"hog", at(t, n * 10.0, 0)}}).empty());
    }
}

TEST(NoisyNeighbour, AVmThatStopsWhileRaisedIsCleared) {
    NoisyNeighbourWatch watch;
    for (int n = 0; n <= 3; ++n) (void)watch.observe(tick(n));
    auto events = watch.observe({{"victim", std::nullopt}, {"hog", at(1040, 60, 0)}});
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0]["kind"], "vm.noisy_neighbour.cleared");
    EXPECT_NE(events[0]["message"].get<std::string>().find("stopped"), std::string::npos);
}

}  // namespace
}  // namespace corral::daemon
