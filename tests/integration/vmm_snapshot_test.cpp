// Snapshots through corral-vmm: the counter guest is saved through the control socket, the
// monitor stopped, and a new monitor started with --restore goes on counting from where the
// guest was; three cycles in a row. Bad snapshots are refused with the reason and no guest runs.

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>

#include "vmm_test_support.h"

namespace corral::testing {
namespace {

using namespace std::chrono_literals;

class VmmSnapshot : public ::testing::Test {
protected:
    void SetUp() override {
        m_dir = ::testing::TempDir() + "/corral-snap-" + std::to_string(::getpid());
        std::filesystem::remove_all(m_dir);
        std::filesystem::create_directories(m_dir);
    }
    void TearDown() override { std::filesystem::remove_all(m_dir); }

    /// One monitor run: starts corral-vmm with `args` plus a console and control socket, waits
    /// for a count line, snapshots into `snapshot_dir` (staying paused), checks the guest printed
    /// nothing more, stops the monitor. Returns the counts printed and the snapshot answer.
    struct Run {
        std::vector<int> counts;
        nlohmann::json answer;
        ProcessResult result;
    };
    Run run_and_snapshot(std::vector<std::string> args, const std::string& snapshot_dir, int round) {
        Run run;
        std::string console_path = m_dir + "/console-" + std::to_string(round) + ".sock";
        std::string control_path = m_dir + "/control-" + std::to_string(round) + ".sock";
        args.insert(args.end(), {"--console", "socket=" + console_path, "--control", control_path});
        auto vmm = std::async(std::launch::async, [args] { return run_vmm(args, 180s); });
        int console = connect_when_ready(console_path, 60s);
        int control = connect_when_ready(control_path, 60s);
        if (console < 0 || control < 0) {
            ADD_FAILURE() << "corral-vmm did not listen";
            run.result = vmm.get();
            return run;
        }
        std::string output = read_until(console, std::regex("count \\d+ ok\n(.|\n)*count \\d+ ok\n"), 60s);
        run.answer = control_request(control, R"({"action":"snapshot","dir":")" + snapshot_dir + R"(","resume":false})");
        // Paused: whatever was already on its way comes out, then nothing more.
        output += read_until(console, std::regex("$^"), 500ms);
        std::string after = read_until(console, std::regex("count"), 1500ms);
        EXPECT_EQ(after, "") << "the guest ran on after a snapshot that asked it to stay paused";
        EXPECT_EQ(control_request(control, R"({"action":"stop"})")["ok"], true);
        ::close(control);
        ::close(console);
        run.result = vmm.get();
        run.counts = counter_counts(output);
        return run;
    }

    std::string m_dir;
};

TEST_F(VmmSnapshot, CounterGoesOnAcrossThreeSnapshotRestoreCycles) {
    CORRAL_REQUIRE_KVM();
    std::string snapshot = m_dir + "/snap-0";
    auto first = run_and_snapshot({"--kernel", tiny_guest("counter"), "--memory", "64M", "--rng"}, snapshot, 0);
    ASSERT_TRUE(first.result.exited_with(0)) << first.result.describe();
    ASSERT_EQ(first.answer["ok"], true) << first.answer;
    EXPECT_EQ(first.answer["state"], "paused") << first.answer;
    EXPECT_EQ(first.answer["memory_bytes"], 64 << 20) << first.answer;
    EXPECT_LT(first.answer["memory_bytes_written"].get<uint64_t>(), 4u << 20) << "only pages that are not zero";
    ASSERT_FALSE(first.counts.empty());
    int last = first.counts.back();

    for (int cycle = 1; cycle <= 3; ++cycle) {
        std::string next = m_dir + "/snap-" + std::to_string(cycle);
        auto run = run_and_snapshot({"--restore", snapshot}, next, cycle);
        ASSERT_TRUE(run.result.exited_with(0)) << run.result.describe();
        EXPECT_NE(run.result.err.find("restored the VM from " + snapshot), std::string::npos) << run.result.describe();
        ASSERT_EQ(run.answer["ok"], true) << run.answer;
        ASSERT_FALSE(run.counts.empty()) << run.result.describe();
        // The first complete line may be the one the guest was printing when it was saved.
        EXPECT_TRUE(run.counts.front() == last + 1 || run.counts.front() == last + 2)
            << "cycle " << cycle << ": the count went on from " << last << " with " << run.counts.front();
        for (size_t i = 1; i < run.counts.size(); ++i) EXPECT_EQ(run.counts[i], run.counts[i - 1] + 1);
        last = run.counts.back();
        snapshot = next;
    }
}

TEST_F(VmmSnapshot, ResumeTrueKeepsTheGuestRunningAndInspectDescribesTheSnapshot) {
    CORRAL_REQUIRE_KVM();
    std::string console_path = m_dir + "/console.sock", control_path = m_dir + "/control.sock";
    auto vmm = std::async(std::launch::async, [&] {
        return run_vmm({"--kernel", tiny_guest("counter"), "--memory", "64M", "--console", "socket=" + console_path,
                        "--control", control_path});
    });
    int console = connect_when_ready(console_path, 60s);
    int control = connect_when_ready(control_path, 60s);
    ASSERT_GE(console, 0);
    ASSERT_GE(control, 0);
    read_until(console, std::regex("count \\d+ ok\n"), 60s);
    std::string snapshot = m_dir + "/snap";
    auto answer = control_request(control, R"({"action":"snapshot","dir":")" + snapshot + R"("})");
    EXPECT_EQ(answer["ok"], true) << answer;
    EXPECT_EQ(answer["state"], "running") << answer;
    EXPECT_EQ(control_request(control, R"({"action":"status"})")["state"], "running");
    EXPECT_NE(read_until(console, std::regex("count \\d+ ok\n(.|\n)*count \\d+ ok\n"), 30s), "");
    // A folder that holds a snapshot is not written over.
    auto again = control_request(control, R"({"action":"snapshot","dir":")" + snapshot + R"("})");
    EXPECT_EQ(again["ok"], false) << again;
    EXPECT_NE(again.value("error", "").find("already holds a snapshot"), std::string::npos) << again;
    EXPECT_EQ(control_request(control, R"({"action":"status"})")["state"], "running") << "a failed snapshot leaves the VM running";
    EXPECT_EQ(control_request(control, R"({"action":"stop"})")["ok"], true);
    ::close(control);
    ::close(console);
    EXPECT_TRUE(vmm.get().exited_with(0));

    auto inspect = run_vmm({"--inspect-snapshot", snapshot});
    EXPECT_TRUE(inspect.exited_with(0)) << inspect.describe();
    for (const char* line : {"format version: 1", "checksum: ok", "memory: 64 MiB", "vcpus: 1", "verdict: valid",
                             "counter.elf"})
        EXPECT_NE(inspect.out.find(line), std::string::npos) << line << "\n" << inspect.describe();
}

TEST_F(VmmSnapshot, AGuestResetAfterARestoreBootsTheKernelAgainUnderOnRebootRestart) {
    CORRAL_REQUIRE_KVM();
    std::string snapshot = m_dir + "/snap";
    auto first = run_and_snapshot({"--kernel", tiny_guest("counter"), "--memory", "64M", "--on-reboot", "restart"},
                                  snapshot, 0);
    ASSERT_EQ(first.answer["ok"], true) << first.answer << first.result.describe();

    std::string console_path = m_dir + "/console.sock", control_path = m_dir + "/control.sock";
    auto vmm = std::async(std::launch::async, [&] {
        return run_vmm({"--restore", snapshot, "--console", "socket=" + console_path, "--control", control_path},
                       180s);
    });
    int console = connect_when_ready(console_path, 60s);
    int control = connect_when_ready(control_path, 60s);
    ASSERT_GE(console, 0);
    ASSERT_GE(control, 0);
    EXPECT_NE(read_until(console, std::regex("count \\d+ ok\n"), 60s), "") << "the restored guest counts on";
    ::close(console);
    auto reset = control_request(control, R"({"action":"reset"})");
    EXPECT_EQ(reset["ok"], true) << reset;
    // The snapshot's configuration says restart: the kernel it names boots again, from the start.
    std::this_thread::sleep_for(500ms);
    console = connect_when_ready(console_path, 60s);
    ASSERT_GE(console, 0);
    EXPECT_NE(read_until(console, std::regex("counter ready\n"), 60s), "") << "the guest booted again";
    EXPECT_EQ(control_request(control, R"({"action":"status"})")["state"], "running");
    EXPECT_EQ(control_request(control, R"({"action":"stop"})")["ok"], true);
    ::close(control);
    ::close(console);
    auto result = vmm.get();
    EXPECT_TRUE(result.exited_with(0)) << result.describe();
    EXPECT_NE(result.err.find("booting again (--on-reboot restart)"), std::string::npos) << result.describe();
}

class VmmSnapshotRefusals : public VmmSnapshot {
protected:
    /// A fresh snapshot of the counter guest, as a folder under m_dir.
    std::string take(const std::string& name) {
        std::string snapshot = m_dir + "/" + name;
        auto run = run_and_snapshot({"--kernel", tiny_guest("counter"), "--memory", "64M"}, snapshot, 100);
        EXPECT_EQ(run.answer["ok"], true) << run.answer << run.result.describe();
        return snapshot;
    }
    /// --restore must fail with exit 1, a message containing `reason`, and no guest output.
    void expect_refused(const std::vector<std::string>& args, const std::string& reason) {
        auto result = run_vmm(args, 60s);
        EXPECT_TRUE(result.exited_with(1)) << result.describe();
        EXPECT_NE(result.err.find(reason), std::string::npos) << reason << "\n" << result.describe();
        EXPECT_EQ(result.out, "") << "no guest ran";
        EXPECT_EQ(result.err.find("restored the VM"), std::string::npos) << result.describe();
    }
};

TEST_F(VmmSnapshotRefusals, EachBadSnapshotIsRefusedWithItsReason) {
    CORRAL_REQUIRE_KVM();
    std::string good = take("good");
    auto copy = [&](const std::string& name) {
        std::string target = m_dir + "/" + name;
        std::filesystem::copy(good, target);
        return target;
    };
    auto patch_state = [](const std::string& dir, size_t offset, char value) {
        std::fstream file(dir + "/state", std::ios::in | std::ios::out | std::ios::binary);
        file.seekp(static_cast<std::streamoff>(offset));
        file.put(value);
    };

    std::string version = copy("version");
    patch_state(version, 8, 2);
    expect_refused({"--restore", version}, "format version 2; this corral-vmm reads version 1");

    std::string corrupted = copy("corrupted");
    patch_state(corrupted, 100, '\x55');
    expect_refused({"--restore", corrupted}, "checksum mismatch");

    std::string truncated = copy("truncated");
    ASSERT_EQ(::truncate((truncated + "/memory").c_str(), 1 << 20), 0);
    expect_refused({"--restore", truncated}, "(truncated)");

    expect_refused({"--restore", good, "--memory", "128M", "--cpus", "2"},
                   "--memory: the snapshot has 64 MiB, 128 MiB given; --cpus: the snapshot has 1, 2 given");

    std::filesystem::remove(good + "/state");
    expect_refused({"--restore", good}, "opening");

    auto inspect = run_vmm({"--inspect-snapshot", corrupted});
    EXPECT_TRUE(inspect.exited_with(1)) << inspect.describe();
    EXPECT_NE(inspect.out.find("verdict: INVALID"), std::string::npos) << inspect.describe();
}

}  // namespace
}  // namespace corral::testing
