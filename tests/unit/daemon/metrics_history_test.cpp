#include "daemon/metrics_history.h"

#include <thread>

#include <gtest/gtest.h>

#include "daemon/vm_metrics.h"

namespace corral::daemon {
namespace {

using Readings = std::vector<std::pair<std::string, std::optional<MetricsSample>>>;

MetricsSample at(double time, double cpu, uint64_t memory = 1000, uint64_t read = 0) {
    MetricsSample sample;
    sample.time = time;
    sample.cpu_seconds = cpu;
    sample.memory_bytes = memory;
    sample.disk_read_bytes = read;
    return sample;
}

TEST(MetricsHistoryTest, RatesAreMadeBetweenConsecutiveSamples) {
    MetricsHistory history(HistoryTiers{std::chrono::seconds(10)}, {}, {});
    const double t0 = unix_now() - 100;
    // 0.5 CPU busy, then 2 CPUs busy; the disk read 1000 bytes per second.
    history.record({{"web1", at(t0, 0, 1000, 0)}}, std::nullopt);
    history.record({{"web1", at(t0 + 10, 5, 2000, 10000)}}, std::nullopt);
    history.record({{"web1", at(t0 + 20, 25, 3000, 20000)}}, std::nullopt);
    auto series = history.vm_series("web1", t0 - 1, 10);
    ASSERT_EQ(series["time"].size(), 2u) << series.dump();
    EXPECT_DOUBLE_EQ(series["cpu"][0].get<double>(), 0.5);
    EXPECT_DOUBLE_EQ(series["cpu"][1].get<double>(), 2.0);
    EXPECT_EQ(series["memory_bytes"][1].get<uint64_t>(), 3000u);
    EXPECT_DOUBLE_EQ(series["disk_read_bytes_per_second"][1].get<double>(), 1000.0);
    EXPECT_EQ(series["interval_seconds"].get<uint64_t>(), 10u);
}

TEST(MetricsHistoryTest, ASampleRightAfterAnotherMakesNoRateOfItsOwn) {
    MetricsHistory history(HistoryTiers{std::chrono::seconds(1)}, {}, {});
    const double t0 = unix_now() - 100;
    // A slow first tick, then the grid's next one 20 ms later: 0.1 s of CPU in 20 ms would read
    // as 5 CPUs busy. Without a step the series leaves that sample out and rates over the second.
    history.record({}, at(t0, 0));
    history.record({}, at(t0 + 0.02, 0.1));
    history.record({}, at(t0 + 1, 0.5));
    auto series = history.host_series(t0 - 1, 0);
    ASSERT_EQ(series["time"].size(), 1u) << series.dump();
    EXPECT_DOUBLE_EQ(series["cpu"][0].get<double>(), 0.5);
}

TEST(MetricsHistoryTest, RunDelayAndThrottlingArePerVcpuFractionsAndLatencyIsPerOperation) {
    MetricsHistory history(HistoryTiers{std::chrono::seconds(10)}, {}, {});
    const double t0 = unix_now() - 100;
    auto busy = [&](double time, double delay, double throttled, uint64_t writes, uint64_t write_ns) {
        MetricsSample sample = at(time, 0);
        sample.vcpus = 2;
        sample.vcpu_run_delay_seconds = delay;
        sample.cpu_throttled_seconds = throttled;
        sample.disk_write_ops = writes;
        sample.disk_write_time_ns = write_ns;
        return sample;
    };
    history.record({{"web1", busy(t0, 0, 0, 0, 0)}}, std::nullopt);
    // 2 vCPUs for 10 s: 7 s of waiting is 35% of their time; 4 s held back is 20%; 100 writes
    // in 4 s of service time are 40 ms each.
    history.record({{"web1", busy(t0 + 10, 7, 4, 100, 4'000'000'000)}}, std::nullopt);
    // No write in this interval: no latency (null, not 0); a reading that overshoots stays at 1.
    history.record({{"web1", busy(t0 + 20, 27.5, 4, 100, 4'000'000'000)}}, std::nullopt);
    auto series = history.vm_series("web1", t0 - 1, 10);
    ASSERT_EQ(series["time"].size(), 2u) << series.dump();
    EXPECT_DOUBLE_EQ(series["vcpu_run_delay"][0].get<double>(), 0.35);
    EXPECT_DOUBLE_EQ(series["cpu_throttled"][0].get<double>(), 0.2);
    EXPECT_DOUBLE_EQ(series["disk_write_latency_ms"][0].get<double>(), 40.0);
    EXPECT_TRUE(series["disk_read_latency_ms"][0].is_null());
    EXPECT_DOUBLE_EQ(series["vcpu_run_delay"][1].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(series["cpu_throttled"][1].get<double>(), 0.0);
    EXPECT_TRUE(series["disk_write_latency_ms"][1].is_null());
}

TEST(MetricsHistoryTest, TheGuestsMemoryIsALevelNullWhereItReportedNone) {
    MetricsHistory history(HistoryTiers{std::chrono::seconds(10)}, {}, {});
    const double t0 = unix_now() - 100;
    VmMetrics metrics;
    metrics.guest_memory_free_bytes = 40 << 20;
    metrics.guest_memory_available_bytes = 50 << 20;
    metrics.guest_memory_total_bytes = 200 << 20;
    history.record({{"web1", at(t0, 0)}}, std::nullopt);
    history.record({{"web1", sample_of(metrics, t0 + 10)}}, std::nullopt);
    history.record({{"web1", at(t0 + 20, 0)}}, std::nullopt);  // no statistics (yet, or any more)
    auto series = history.vm_series("web1", t0 - 1, 10);
    ASSERT_EQ(series["time"].size(), 2u) << series.dump();
    EXPECT_EQ(series["guest_memory_free_bytes"][0].get<uint64_t>(), uint64_t{40} << 20);
    EXPECT_EQ(series["guest_memory_available_bytes"][0].get<uint64_t>(), uint64_t{50} << 20);
    EXPECT_EQ(series["guest_memory_total_bytes"][0].get<uint64_t>(), uint64_t{200} << 20);
    EXPECT_TRUE(series["guest_memory_free_bytes"][1].is_null());
    EXPECT_FALSE(history.host_series(t0 - 1, 10).contains("guest_memory_free_bytes"));
}

TEST(MetricsHistoryTest, AStepKeepsSamplesThatFarApart) {
    MetricsHistory history(HistoryTiers{std::chrono::seconds(10)}, {}, {});
    const double t0 = unix_now() - 600;
    for (int i = 0; i <= 30; ++i)
        history.record({{"web1", at(t0 + 10 * i, i)}}, std::nullopt);
    auto series = history.vm_series("web1", t0, 30);
    ASSERT_EQ(series["time"].size(), 10u) << series.dump();
    EXPECT_DOUBLE_EQ(series["time"][1].get<double>() - series["time"][0].get<double>(), 30.0);
    EXPECT_DOUBLE_EQ(series["cpu"][0].get<double>(), 0.1);
}

TEST(MetricsHistoryTest, ARestartedProcessOrAGapIsNullNotANegativeRate) {
    MetricsHistory history(HistoryTiers{std::chrono::seconds(10)}, {}, {});
    const double t0 = unix_now() - 600;
    history.record({{"web1", at(t0, 100)}}, std::nullopt);
    history.record({{"web1", at(t0 + 10, 1)}}, std::nullopt);  // a new process: its CPU time began again
    history.record({{"web1", std::nullopt}}, std::nullopt);    // stopped for a while
    history.record({{"web1", at(t0 + 300, 2)}}, std::nullopt);
    auto series = history.vm_series("web1", t0, 10);
    ASSERT_EQ(series["cpu"].size(), 2u) << series.dump();
    EXPECT_TRUE(series["cpu"][0].is_null());
    EXPECT_TRUE(series["cpu"][1].is_null());
}

TEST(MetricsHistoryTest, ADeletedVmLosesItsHistoryAStoppedOneKeepsIt) {
    MetricsHistory history(HistoryTiers{std::chrono::seconds(10)}, {}, {});
    const double t0 = unix_now() - 100;
    history.record({{"a", at(t0, 0)}, {"b", at(t0, 0)}}, std::nullopt);
    history.record({{"a", at(t0 + 10, 1)}, {"b", at(t0 + 10, 1)}}, std::nullopt);
    history.record({{"a", std::nullopt}}, std::nullopt);  // a stopped, b deleted
    EXPECT_EQ(history.vm_series("a", t0 - 1, 10)["time"].size(), 1u);
    EXPECT_EQ(history.vm_series("b", t0 - 1, 10)["time"].size(), 0u);
}

TEST(MetricsHistoryTest, RingsKeepAnHourFineAndADayCoarse) {
    HistoryTiers tiers{std::chrono::seconds(10)};
    EXPECT_EQ(tiers.fine_capacity(), 360u);
    EXPECT_EQ(tiers.coarse_capacity(), 1440u);
    SampleRing ring(3);
    for (int i = 0; i < 5; ++i)
        ring.push(at(i, 0));
    ASSERT_EQ(ring.size(), 3u);
    EXPECT_DOUBLE_EQ(ring.since(0).front().time, 2.0);
}

TEST(MetricsHistoryTest, AnHourIsSampledOnceTheHostsFineRingIsFull) {
    MetricsHistory history(HistoryTiers{std::chrono::seconds(60)}, {}, {});  // an hour: 60 samples
    const double t0 = unix_now() - 3600;
    for (int i = 0; i < 59; ++i)
        history.record({}, at(t0 + 60 * i, i));
    EXPECT_FALSE(history.sampled_an_hour());
    history.record({}, at(t0 + 60 * 59, 59));
    EXPECT_TRUE(history.sampled_an_hour());
}

TEST(MetricsHistoryTest, ALongStepOrAnOldStartReadsTheCoarseRing) {
    MetricsHistory history(HistoryTiers{std::chrono::seconds(10)}, {}, {});
    const double t0 = unix_now() - 600;
    for (int i = 0; i <= 12; ++i)
        history.record({{"web1", at(t0 + 10 * i, i)}}, std::nullopt);
    // Ticks 0, 6 and 12 went into the coarse ring (one in 6).
    auto series = history.vm_series("web1", t0 - 7200, 10);
    EXPECT_EQ(series["interval_seconds"].get<uint64_t>(), 60u);
    EXPECT_EQ(series["time"].size(), 2u) << series.dump();
    EXPECT_EQ(history.vm_series("web1", t0, 60)["interval_seconds"].get<uint64_t>(), 60u);
}

TEST(MetricsHistoryTest, HostSampleFromProc) {
    const std::string stat = "cpu  100 20 30 1000 50 5 5 10 0 0\ncpu0 50 10 15 500 25 2 3 5 0 0\n";
    const std::string meminfo = "MemTotal:        2048 kB\nMemFree:          512 kB\nMemAvailable:    1024 kB\n";
    auto sample = host_sample_from_proc(stat, meminfo, 42);
    ASSERT_TRUE(sample);
    EXPECT_EQ(sample->memory_bytes, 1024u * 1024u);
    EXPECT_GT(sample->cpu_seconds, 0);
    EXPECT_FALSE(host_sample_from_proc("cpu  1 2\n", meminfo, 42));
    EXPECT_FALSE(host_sample_from_proc(stat, "MemTotal: 10 kB\n", 42));
}

TEST(MetricsHistoryTest, TheThreadSamplesAtTheIntervalUntilDestroyed) {
    int calls = 0;
    {
        MetricsHistory history(
            HistoryTiers{std::chrono::seconds(1)},
            [&calls](double now) {
                ++calls;
                return Readings{{"web1", at(now, calls)}};
            },
            [](double now) { return std::optional<MetricsSample>(at(now, 1)); });
        history.start();
        while (history.vm_series("web1", unix_now() - 60, 1)["time"].empty())
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        EXPECT_FALSE(history.host_series(unix_now() - 60, 1)["time"].empty());
    }
    const int after = calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));
    EXPECT_EQ(calls, after) << "no sampling after the destructor";
}

}  // namespace
}  // namespace corral::daemon
