#include "daemon/slow_diagnosis.h"

#include <gtest/gtest.h>

namespace corral::daemon {
namespace {

nlohmann::json cause_named(const nlohmann::json& diagnosis, const std::string& name) {
    for (const auto& cause : diagnosis["causes"])
        if (cause["cause"] == name)
            return cause;
    return nullptr;
}

nlohmann::json series(nlohmann::json delay, nlohmann::json throttled, nlohmann::json read, nlohmann::json write) {
    return {{"vcpu_run_delay", delay},
            {"cpu_throttled", throttled},
            {"disk_read_latency_ms", read},
            {"disk_write_latency_ms", write}};
}

TEST(SlowDiagnosisTest, EachCauseAboveItsThresholdNamesTheFigureAndTheFix) {
    // 8 vCPUs running on 2 host CPUs; the VM capped at 10% of a CPU.
    SlowContext context{"web1", 2, 8, 10};
    auto diagnosis = diagnose_slowness(series({0.3, 0.4, nullptr}, {0.9, 0.8}, {1.0, 3.0}, {40.0, 40.0}), context);
    auto wait = cause_named(diagnosis, "cpu_wait");
    EXPECT_EQ(wait["level"], "problem");
    EXPECT_DOUBLE_EQ(wait["value"].get<double>(), 0.35);
    EXPECT_EQ(wait["verdict"],
              "its vCPUs waited 35% of the time for a host CPU: the host is overcommitted (4 vCPUs per CPU)");
    EXPECT_NE(wait["fix"].get<std::string>().find("corral vm edit web1 --cpu-weight"), std::string::npos);
    auto cap = cause_named(diagnosis, "cpu_cap");
    EXPECT_EQ(cap["level"], "problem");
    EXPECT_EQ(cap["verdict"], "held back by its CPU cap (cpu_max 10%, 0.1 of a CPU) 85% of the time");
    EXPECT_EQ(cap["fix"], "raise cpu_max (corral vm edit web1 --cpu-max 20%)");
    auto read = cause_named(diagnosis, "disk_read");
    EXPECT_EQ(read["level"], "ok");
    EXPECT_EQ(read["verdict"], "disk reads take 2 ms");
    auto write = cause_named(diagnosis, "disk_write");
    EXPECT_EQ(write["level"], "warning");
    EXPECT_EQ(write["verdict"], "disk writes take 40 ms: the pool's disk is slow or busy");
    EXPECT_EQ(diagnosis["window_seconds"].get<double>(), slow_thresholds::k_window_seconds);
}

TEST(SlowDiagnosisTest, NoDataIsUnknownAndNoCapIsFine) {
    SlowContext context{"web1", 4, 2, 0};
    auto diagnosis = diagnose_slowness(series({nullptr}, nlohmann::json::array(), {}, {nullptr}), context);
    EXPECT_EQ(cause_named(diagnosis, "cpu_wait")["level"], "unknown");
    EXPECT_EQ(cause_named(diagnosis, "cpu_cap")["level"], "ok");
    EXPECT_EQ(cause_named(diagnosis, "cpu_cap")["verdict"], "it has no CPU cap");
    EXPECT_EQ(cause_named(diagnosis, "disk_read")["level"], "unknown");
    EXPECT_EQ(cause_named(diagnosis, "disk_write")["verdict"], "no disk writes in the last minutes");
}

TEST(SlowDiagnosisTest, WaitingWithoutOvercommitBlamesOtherWork) {
    SlowContext context{"web1", 4, 2, 0};
    auto wait = cause_named(diagnose_slowness(series({0.06}, {}, {}, {}), context), "cpu_wait");
    EXPECT_EQ(wait["level"], "warning");
    EXPECT_EQ(wait["verdict"],
              "its vCPUs waited 6% of the time for a host CPU: other work on the host keeps its CPUs busy");
    EXPECT_EQ(wait["fix"],
              "find what keeps the host busy (the dashboard's host CPU chart, top), or raise this VM's CPU "
              "weight (corral vm edit web1 --cpu-weight 200)");
}

}  // namespace
}  // namespace corral::daemon
