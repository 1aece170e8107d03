#include "daemon/vcpu_threads.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

namespace corral::daemon {
namespace {
namespace fs = std::filesystem;

TEST(VcpuThreadsTest, TheMonitorsThreadNames) {
    EXPECT_EQ(vcpu_index_of_thread("CPU 0/TCG"), 0u);
    EXPECT_EQ(vcpu_index_of_thread("CPU 12/KVM"), 12u);
    EXPECT_EQ(vcpu_index_of_thread("vcpu3"), 3u);
    for (const char* other : {"qemu-system-x86", "CPU /TCG", "CPU x/TCG", "CPU 1", "vcpu", "vcpu3x", "virtio-blk",
                              "CPU 01/TCG", "worker"})
        EXPECT_EQ(vcpu_index_of_thread(other), std::nullopt) << other;
}

TEST(VcpuThreadsTest, SchedstatAndTheSumOverVcpuThreads) {
    EXPECT_EQ(parse_schedstat("123 456 7\n")->delay_ns, 456u);
    EXPECT_EQ(parse_schedstat("garbage"), std::nullopt);

    // A fake /proc: process 100 with its main thread, two vCPU threads and an I/O thread.
    char pattern[] = "/tmp/vcpu-threads-test.XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    const fs::path proc = pattern;
    auto thread = [&](int tid, const std::string& comm, const std::string& schedstat) {
        const fs::path dir = proc / "100/task" / std::to_string(tid);
        fs::create_directories(dir);
        std::ofstream(dir / "comm") << comm << "\n";
        std::ofstream(dir / "schedstat") << schedstat << "\n";
    };
    thread(100, "qemu-system-x86", "1000 1000 1");
    thread(103, "CPU 1/TCG", "5000 300 10");
    thread(102, "CPU 0/TCG", "7000 200 10");
    thread(104, "worker", "9000 9000 1");
    auto threads = vcpu_threads(100, proc);
    ASSERT_EQ(threads.size(), 2u);
    EXPECT_EQ(threads[0].index, 0u);
    EXPECT_EQ(threads[0].tid, 102);
    EXPECT_EQ(threads[1].tid, 103);
    const auto sum = vcpu_sched_stat(100, proc);
    EXPECT_EQ(sum.run_ns, 12000u);
    EXPECT_EQ(sum.delay_ns, 500u);
    EXPECT_EQ(vcpu_sched_stat(999, proc).delay_ns, 0u);  // no such process: nothing counted
    fs::remove_all(proc);
}

TEST(VcpuThreadsTest, PinsAreOneCpuPerVcpu) {
    EXPECT_EQ(parse_vcpu_pins("2,3").value(), (std::vector<unsigned>{2, 3}));
    EXPECT_EQ(parse_vcpu_pins("0").value(), (std::vector<unsigned>{0}));
    for (const char* bad : {"", "1,", ",1", "1-2", "a", "1,,2", "01", "99999"}) {
        auto parsed = parse_vcpu_pins(bad);
        ASSERT_FALSE(parsed) << bad;
        EXPECT_NE(parsed.error().message().find("one per vCPU in order, like 2,3"), std::string::npos);
    }
}

}  // namespace
}  // namespace corral::daemon
