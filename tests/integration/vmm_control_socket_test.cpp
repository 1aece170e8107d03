// The control socket (--control PATH): JSON requests, one per line, served by the VMM thread.
// The echo guest keeps running (it echoes COM1 input), so pausing it shows as echoes that do
// not come until the VM is resumed.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "vmm_test_support.h"

namespace corral::testing {
namespace {

using namespace std::chrono_literals;

class VmmControlSocket : public ::testing::Test {
protected:
    void SetUp() override {
        std::string base = ::testing::TempDir() + "/corral-ctl-" + std::to_string(::getpid());
        m_console = base + "-console.sock";
        m_control = base + "-control.sock";
        ::unlink(m_console.c_str());
        ::unlink(m_control.c_str());
    }

    std::future<ProcessResult> start(std::vector<std::string> extra = {}) {
        std::vector<std::string> args = {"--kernel", tiny_guest("echo"), "--memory", "64M", "--console",
                                         "socket=" + m_console, "--control", m_control};
        args.insert(args.end(), extra.begin(), extra.end());
        return std::async(std::launch::async, [args] { return run_vmm(args); });
    }

    std::string m_console;
    std::string m_control;
};

TEST_F(VmmControlSocket, StatusPauseResumeCountersStop) {
    CORRAL_REQUIRE_KVM();
    auto vmm = start();
    int console = connect_when_ready(m_console, 60s);
    ASSERT_GE(console, 0) << "corral-vmm never listened on " << m_console;
    ASSERT_NE(read_until(console, "echo ready\n", 60s).find("echo ready"), std::string::npos);
    int control = connect_when_ready(m_control, 10s);
    ASSERT_GE(control, 0) << "corral-vmm never listened on " << m_control;

    auto status = control_request(control, R"({"action":"status"})");
    EXPECT_EQ(status["ok"], true) << status;
    EXPECT_EQ(status["state"], "running") << status;
    EXPECT_EQ(status["vcpus"], 1) << status;
    EXPECT_TRUE(status["uptime_ms"].is_number()) << status;

    auto pause = control_request(control, R"({"action":"pause"})");
    EXPECT_EQ(pause["ok"], true) << pause;
    status = control_request(control, R"({"action":"status"})");
    EXPECT_EQ(status["state"], "paused") << status;
    // A paused guest does not run: what we type is not echoed...
    ASSERT_EQ(::send(console, "xyz", 3, MSG_NOSIGNAL), 3);
    EXPECT_EQ(read_until(console, "xyz", 1500ms), "") << "the paused guest echoed";

    auto resume = control_request(control, R"({"action":"resume"})");
    EXPECT_EQ(resume["ok"], true) << resume;
    // ...until it is resumed.
    EXPECT_NE(read_until(console, "xyz", 30s).find("xyz"), std::string::npos);
    status = control_request(control, R"({"action":"status"})");
    EXPECT_EQ(status["state"], "running") << status;

    auto counters = control_request(control, R"({"action":"counters"})");
    EXPECT_EQ(counters["ok"], true) << counters;
    EXPECT_TRUE(counters["devices"].is_array()) << counters;

    // Rate limits change live (this guest has no disk or NIC: nothing to limit, still answered).
    auto limits = control_request(control, R"({"action":"limits","disk_bytes_per_s":1048576,"nic_bytes_per_s":65536})");
    EXPECT_EQ(limits["ok"], true) << limits;
    auto bad_limits = control_request(control, R"({"action":"limits","disk_ops_per_s":"many"})");
    EXPECT_EQ(bad_limits["ok"], false) << bad_limits;

    auto bad = control_request(control, "{not json");
    EXPECT_EQ(bad["ok"], false) << bad;
    auto unknown = control_request(control, R"({"action":"fly"})");
    EXPECT_EQ(unknown["ok"], false) << unknown;
    auto reset = control_request(control, R"({"action":"reset"})");
    EXPECT_EQ(reset["ok"], false) << reset;
    EXPECT_NE(reset.value("error", "").find("not supported"), std::string::npos) << reset;

    auto stop = control_request(control, R"({"action":"stop"})");
    EXPECT_EQ(stop["ok"], true) << stop;
    ::close(control);
    ::close(console);
    ProcessResult result = vmm.get();
    EXPECT_TRUE(result.exited_with(0)) << result.describe();
    EXPECT_NE(::access(m_control.c_str(), F_OK), 0) << "the control socket is removed at exit";
}

/// Runs a shell command; its exit status and its output (stdout and stderr).
std::pair<int, std::string> shell(const std::string& command) {
    std::string output;
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (!p)
        return {-1, ""};
    char buffer[4096];
    for (size_t n; (n = fread(buffer, 1, sizeof buffer, p)) > 0;)
        output.append(buffer, n);
    int status = ::pclose(p);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

// A backup of a running native VM reads an internal snapshot that the monitor takes of its
// open qcow2 disks (the one process that may change them): qemu-img sees it while the VM runs,
// the image checks clean after, and a delete removes it. A read-only disk is left alone.
TEST_F(VmmControlSocket, DiskSnapshotTakesAndDeletesAnInternalSnapshotOfTheOpenDisks) {
    CORRAL_REQUIRE_KVM();
    if (shell("qemu-img --version").first != 0)
        GTEST_SKIP() << "qemu-img is not installed";
    const std::string disk = ::testing::TempDir() + "/corral-ctl-disk-" + std::to_string(::getpid()) + ".qcow2";
    const std::string seed = disk + ".seed.qcow2";
    ASSERT_EQ(shell("qemu-img create -q -f qcow2 " + disk + " 16M && qemu-io -c 'write -P 0x5a 0 1M' " + disk +
                    " >/dev/null && qemu-img create -q -f qcow2 " + seed + " 1M")
                  .first,
              0);
    auto vmm =
        start({"--disk", "path=" + disk + ",format=qcow2", "--disk", "path=" + seed + ",format=qcow2,readonly=on"});
    int console = connect_when_ready(m_console, 60s);
    ASSERT_GE(console, 0);
    ASSERT_NE(read_until(console, "echo ready\n", 60s).find("echo ready"), std::string::npos);
    int control = connect_when_ready(m_control, 10s);
    ASSERT_GE(control, 0);

    auto taken = control_request(control, R"({"action":"disk_snapshot","tag":"corral-backup-1"})");
    EXPECT_EQ(taken["ok"], true) << taken;
    EXPECT_EQ(taken["disks"], 1) << "the writable disk only: " << taken;
    auto [listed, list] = shell("qemu-img snapshot -l -U " + disk);
    EXPECT_EQ(listed, 0) << list;
    EXPECT_NE(list.find("corral-backup-1"), std::string::npos) << "qemu-img lists it while the VM runs:\n" << list;
    EXPECT_EQ(shell("qemu-img snapshot -l -U " + seed).second.find("corral-backup-1"), std::string::npos);
    auto again = control_request(control, R"({"action":"disk_snapshot","tag":"corral-backup-1"})");
    EXPECT_EQ(again["ok"], false) << "a second snapshot of that name: " << again;
    auto bad = control_request(control, R"({"action":"disk_snapshot","tag":"two words"})");
    EXPECT_EQ(bad["ok"], false) << bad;
    auto status = control_request(control, R"({"action":"status"})");
    EXPECT_EQ(status["state"], "running") << "the VM runs on: " << status;

    auto deleted = control_request(control, R"({"action":"disk_snapshot","tag":"corral-backup-1","delete":true})");
    EXPECT_EQ(deleted["ok"], true) << deleted;
    EXPECT_EQ(shell("qemu-img snapshot -l -U " + disk).second.find("corral-backup-1"), std::string::npos);

    auto stop = control_request(control, R"({"action":"stop"})");
    EXPECT_EQ(stop["ok"], true) << stop;
    ::close(control);
    ::close(console);
    EXPECT_TRUE(vmm.get().exited_with(0));
    auto [checked, report] = shell("qemu-img check " + disk);
    EXPECT_EQ(checked, 0) << report;
    auto [read, pattern] = shell("qemu-io -c 'read -P 0x5a 0 1M' " + disk);
    EXPECT_EQ(read, 0) << "the data is still there: " << pattern;
    ::unlink(disk.c_str());
    ::unlink(seed.c_str());
}

// A backup of a running native VM changes its disks' generation bitmap at the snapshot's instant:
// each writable qcow2 disk hands back the bits of the old generation (base64 in the answer), drops
// it and keeps the new one, which is in the image once the monitor closes it. A read-only and a
// raw disk say why they take none; a bad bitmap request is refused and changes nothing.
TEST_F(VmmControlSocket, DiskSnapshotWithABitmapHandsTheOldGenerationBackAndStartsTheNext) {
    CORRAL_REQUIRE_KVM();
    if (shell("qemu-img bitmap --help").first != 0 || shell("qemu-io --version").first != 0)
        GTEST_SKIP() << "qemu-img (with bitmap) and qemu-io are not installed";
    const std::string disk = ::testing::TempDir() + "/corral-ctl-gen-" + std::to_string(::getpid()) + ".qcow2";
    const std::string seed = disk + ".seed.qcow2", raw = disk + ".raw";
    // gen-1 sees QEMU write the first MiB: bits 0-15 of 256 (64 KiB granules over 16 MiB).
    ASSERT_EQ(shell("qemu-img create -q -f qcow2 " + disk + " 16M && qemu-img bitmap --add " + disk +
                    " gen-1 && qemu-io -c 'write -P 0x5a 0 1M' " + disk +
                    " >/dev/null && qemu-img create -q -f qcow2 " + seed + " 1M && truncate -s 1M " + raw)
                  .first,
              0);
    auto vmm = start({"--disk", "path=" + disk + ",format=qcow2", "--disk",
                      "path=" + seed + ",format=qcow2,readonly=on", "--disk", "path=" + raw + ",format=raw"});
    int console = connect_when_ready(m_console, 60s);
    ASSERT_GE(console, 0);
    ASSERT_NE(read_until(console, "echo ready\n", 60s).find("echo ready"), std::string::npos);
    int control = connect_when_ready(m_control, 10s);
    ASSERT_GE(control, 0);

    auto bad = control_request(control,
                               R"({"action":"disk_snapshot","tag":"b0","bitmap":{"name":"gen 2","replaces":"gen-"}})");
    EXPECT_EQ(bad["ok"], false) << bad;
    auto taken = control_request(
        control, R"({"action":"disk_snapshot","tag":"b1","bitmap":{"name":"gen-2","replaces":"gen-"}})");
    ASSERT_EQ(taken["ok"], true) << taken;
    ASSERT_EQ(taken["bitmaps"].size(), 3u) << "one entry per --disk: " << taken;
    const auto& first = taken["bitmaps"][0];
    EXPECT_EQ(first["added"], "gen-2") << taken;
    ASSERT_EQ(first["handed"].size(), 1u) << taken;
    EXPECT_EQ(first["handed"][0]["name"], "gen-1");
    EXPECT_EQ(first["handed"][0]["granularity"], 65536);
    EXPECT_EQ(first["handed"][0]["disk_size"], 16 << 20);
    std::string zeros;
    for (int i = 0; i < 9; ++i)
        zeros += "AAAA";
    EXPECT_EQ(first["handed"][0]["bits"], "//8A" + zeros + "AAA=") << "0xff 0xff, then 30 zero bytes";
    EXPECT_EQ(taken["bitmaps"][1]["error"], "a read-only disk gets no new generation bitmap") << taken;
    EXPECT_EQ(taken["bitmaps"][2]["error"], "a raw disk keeps no bitmap") << taken;
    // Until the close the file lists the old generation, in use: no reader trusts it.
    EXPECT_NE(shell("qemu-img info -U " + disk).second.find("gen-1"), std::string::npos);

    ASSERT_EQ(control_request(control, R"({"action":"disk_snapshot","tag":"b1","delete":true})")["ok"], true);
    auto again = control_request(
        control, R"({"action":"disk_snapshot","tag":"b2","bitmap":{"name":"gen-3","replaces":"gen-"}})");
    ASSERT_EQ(again["ok"], true) << again;
    ASSERT_EQ(again["bitmaps"][0]["handed"].size(), 1u) << again;
    EXPECT_EQ(again["bitmaps"][0]["handed"][0]["name"], "gen-2");
    EXPECT_EQ(again["bitmaps"][0]["handed"][0]["bits"], "AAAA" + zeros + "AAA=") << "the guest wrote nothing since";
    ASSERT_EQ(control_request(control, R"({"action":"disk_snapshot","tag":"b2","delete":true})")["ok"], true);

    auto stop = control_request(control, R"({"action":"stop"})");
    EXPECT_EQ(stop["ok"], true) << stop;
    ::close(control);
    ::close(console);
    EXPECT_TRUE(vmm.get().exited_with(0));
    auto [checked, report] = shell("qemu-img check " + disk);
    EXPECT_EQ(checked, 0) << report;
    auto [listed, info] = shell("qemu-img info --output=json " + disk);
    ASSERT_EQ(listed, 0) << info;
    auto bitmaps = nlohmann::json::parse(info)["format-specific"]["data"]["bitmaps"];
    ASSERT_EQ(bitmaps.size(), 1u) << info;
    EXPECT_EQ(bitmaps[0]["name"], "gen-3");
    EXPECT_EQ(bitmaps[0]["flags"], nlohmann::json::array({"auto"})) << "stored at the close, not in use";
    ::unlink(disk.c_str());
    ::unlink(seed.c_str());
    ::unlink(raw.c_str());
}

TEST_F(VmmControlSocket, ResetRebootsUnderOnRebootRestart) {
    CORRAL_REQUIRE_KVM();
    auto vmm = start({"--on-reboot", "restart"});
    int console = connect_when_ready(m_console, 60s);
    ASSERT_GE(console, 0);
    ASSERT_NE(read_until(console, "echo ready\n", 60s).find("echo ready"), std::string::npos);
    ::close(console);
    int control = connect_when_ready(m_control, 10s);
    ASSERT_GE(control, 0);
    auto reset = control_request(control, R"({"action":"reset"})");
    EXPECT_EQ(reset["ok"], true) << reset;
    // The same control connection serves the rebooted VM; its console prints the banner again.
    std::this_thread::sleep_for(500ms);
    console = connect_when_ready(m_console, 60s);
    ASSERT_GE(console, 0);
    EXPECT_NE(read_until(console, "echo ready\n", 60s).find("echo ready"), std::string::npos);
    auto status = control_request(control, R"({"action":"status"})");
    EXPECT_EQ(status["state"], "running") << status;
    EXPECT_EQ(control_request(control, R"({"action":"stop"})")["ok"], true);
    ::close(control);
    ::close(console);
    ProcessResult result = vmm.get();
    EXPECT_TRUE(result.exited_with(0)) << result.describe();
    EXPECT_NE(result.err.find("resetting the VM (control request)"), std::string::npos) << result.describe();
}

TEST_F(VmmControlSocket, ShutdownIsCtrlAltDelThenTheTimeout) {
    CORRAL_REQUIRE_KVM();
    // The echo guest ignores Ctrl-Alt-Del (no keyboard driver), so the timeout ends it.
    auto vmm = start({"--shutdown-timeout", "1"});
    int control = connect_when_ready(m_control, 60s);
    ASSERT_GE(control, 0);
    EXPECT_EQ(control_request(control, R"({"action":"shutdown"})")["ok"], true);
    ::close(control);
    ProcessResult result = vmm.get();
    EXPECT_TRUE(result.exited_with(0)) << result.describe();
    EXPECT_NE(result.err.find("did not shut down within 1 s"), std::string::npos) << result.describe();
}

TEST_F(VmmControlSocket, PausesEveryVcpuIncludingHaltedOnes) {
    CORRAL_REQUIRE_KVM();
    // The echo guest starts no APs: three of the four vCPUs wait for a SIPI inside KVM_RUN,
    // so the kick must get them out too before pause is acknowledged.
    auto vmm = start({"--cpus", "4"});
    int control = connect_when_ready(m_control, 60s);
    ASSERT_GE(control, 0);
    auto status = control_request(control, R"({"action":"status"})");
    EXPECT_EQ(status["vcpus"], 4) << status;
    for (int round = 0; round < 3; ++round) {
        auto pause = control_request(control, R"({"action":"pause"})");
        EXPECT_EQ(pause["ok"], true) << pause;
        EXPECT_EQ(control_request(control, R"({"action":"status"})")["state"], "paused");
        EXPECT_EQ(control_request(control, R"({"action":"resume"})")["ok"], true);
    }
    EXPECT_EQ(control_request(control, R"({"action":"stop"})")["ok"], true);
    ::close(control);
    ProcessResult result = vmm.get();
    EXPECT_TRUE(result.exited_with(0)) << result.describe();
}

}  // namespace
}  // namespace corral::testing
