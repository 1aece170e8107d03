#include "daemon/host_doctor.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

namespace corral::daemon {
namespace {
namespace fs = std::filesystem;

class TempDir {
public:
    TempDir() {
        char pattern[] = "/tmp/host-doctor-test.XXXXXX";
        if (::mkdtemp(pattern)) m_path = pattern;
    }
    ~TempDir() { fs::remove_all(m_path); }
    const fs::path& path() const { return m_path; }

private:
    fs::path m_path;
};

inventory::VmRecord vm(const std::string& name, const std::string& state, const std::string& policy = "on-failure") {
    inventory::VmRecord record;
    record.name = name;
    record.state = state;
    record.restart_policy = policy;
    return record;
}

TEST(HostDoctorTest, KvmAbsentOrEmulatedSaysWhyAndHow) {
    auto absent = check_kvm({{"kvm", "absent"}, {"reason", "no /dev/kvm"}});
    ASSERT_EQ(absent.size(), 1u);
    EXPECT_EQ(absent[0].severity, Severity::Warning);
    EXPECT_NE(absent[0].problem.find("no usable KVM (no /dev/kvm)"), std::string::npos);
    EXPECT_NE(absent[0].fix.find("kvm_intel or kvm_amd"), std::string::npos);
    EXPECT_EQ(check_kvm({{"kvm", "emulated"}, {"reason", "3 M iterations/s"}}).size(), 1u);
    EXPECT_TRUE(check_kvm({{"kvm", "hardware"}}).empty());
}

TEST(HostDoctorTest, NestedVirtualizationOff) {
    TempDir sys;
    EXPECT_TRUE(check_nested(sys.path()).empty());  // no KVM module: nothing to say
    fs::create_directories(sys.path() / "kvm_amd/parameters");
    std::ofstream(sys.path() / "kvm_amd/parameters/nested") << "0\n";
    auto off = check_nested(sys.path());
    ASSERT_EQ(off.size(), 1u);
    EXPECT_EQ(off[0].fix, "echo 'options kvm_amd nested=1' > /etc/modprobe.d/corral-nested.conf, then reload kvm_amd "
                          "with no VM running");
    std::ofstream(sys.path() / "kvm_amd/parameters/nested") << "1\n";
    EXPECT_TRUE(check_nested(sys.path()).empty());
}

TEST(HostDoctorTest, PoolsRunningOutOfSpace) {
    const uint64_t gib = 1ull << 30;
    auto findings = check_pools({{"roomy", 100 * gib, 50 * gib}, {"tight", 100 * gib, 5 * gib}, {"full", 100 * gib, gib}});
    ASSERT_EQ(findings.size(), 2u);
    EXPECT_EQ(findings[0].severity, Severity::Warning);
    EXPECT_NE(findings[0].problem.find("pool tight has 5120 MiB free (5.0% of 102400 MiB)"), std::string::npos);
    EXPECT_EQ(findings[1].severity, Severity::Error);
    EXPECT_NE(findings[1].problem.find("pool full"), std::string::npos);
}

TEST(HostDoctorTest, OrphansAndPolicies) {
    auto taps = check_orphan_taps({"crl0123abcdn0", "crl0123abcdn1", "tap0", "crlx"}, {"crl0123abcdn0"});
    ASSERT_EQ(taps.size(), 1u);
    EXPECT_EQ(taps[0].fix, "ip link delete crl0123abcdn1");

    TempDir run;
    fs::create_directories(run.path() / "ghost");
    fs::create_directories(run.path() / "web");
    fs::create_directories(run.path() / "db");
    std::ofstream(run.path() / "db/vm.pid") << ::getpid() << "\n";  // a live process
    auto dirs = check_orphan_run_dirs(run.path(), {vm("web", "stopped"), vm("db", "stopped")});
    ASSERT_EQ(dirs.size(), 2u);
    std::sort(dirs.begin(), dirs.end(), [](const auto& a, const auto& b) { return a.check < b.check; });
    EXPECT_EQ(dirs[0].check, "orphan-process");
    EXPECT_EQ(dirs[0].severity, Severity::Error);
    EXPECT_EQ(dirs[1].check, "orphan-run-dir");
    EXPECT_EQ(dirs[1].fix, "rm -r " + (run.path() / "ghost").string());

    auto volumes = check_orphan_volumes({{"default", "used", true}, {"default", "lonely", false}});
    ASSERT_EQ(volumes.size(), 1u);
    EXPECT_NE(volumes[0].fix.find("corral volume delete default/lonely"), std::string::npos);

    auto policies = check_restart_policies({vm("a", "stopped", "no"), vm("b", "running")});
    ASSERT_EQ(policies.size(), 1u);
    EXPECT_EQ(policies[0].fix, "corral vm edit a --restart on-failure (while it is stopped)");

    auto big = vm("big", "running");
    big.vcpus = 9;
    EXPECT_EQ(check_overcommit({4, 90}, {2, 1000}, {big}).size(), 1u);
    EXPECT_TRUE(check_overcommit({8, 90}, {2, 1000}, {big}).empty());
}

TEST(HostDoctorTest, NetworkProblemsAndTheCounts) {
    nlohmann::json policy = {{"ok", false},
                             {"problems", {{{"problem", "net.ipv4.ip_forward is 0"}, {"fix", "sysctl -w net.ipv4.ip_forward=1"}}}}};
    auto network = check_network(policy);
    ASSERT_EQ(network.size(), 1u);
    EXPECT_EQ(network[0].severity, Severity::Error);
    auto json = doctor_json({network[0], {"x", Severity::Info, "p", "f"}});
    EXPECT_EQ(json["counts"]["error"], 1);
    EXPECT_EQ(json["counts"]["info"], 1);
    EXPECT_EQ(json["findings"][0]["fix"], "sysctl -w net.ipv4.ip_forward=1");
}

}  // namespace
}  // namespace corral::daemon
