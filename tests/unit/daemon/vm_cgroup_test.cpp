#include "daemon/vm_cgroup.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>

namespace corral::daemon {
namespace {
namespace fs = std::filesystem;

// Fake cgroup trees in a temporary folder: the kernel's control files are plain files the test
// makes first (as the kernel would when the group is made), then reads back what corrald wrote.
class FakeTree : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/vm-cgroup-test.XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        m_root = pattern;
    }
    void TearDown() override { fs::remove_all(m_root); }

    void put(const fs::path& file, const std::string& text = "") {
        fs::create_directories(file.parent_path());
        std::ofstream(file) << text;
    }
    std::string get(const fs::path& file) {
        std::ifstream in(file);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }
    /// A v2 group folder with the files the kernel makes when cpu, memory, io and cpuset are on.
    void v2_group(const fs::path& dir) {
        for (const char* file : {"cgroup.procs", "cgroup.subtree_control", "cpu.weight", "cpu.max", "cpu.max.burst",
                                 "memory.max", "io.weight", "cpuset.cpus"})
            put(dir / file);
    }
    void v1_groups(const std::string& vm) {
        put(m_root / "cpuset/cpuset.cpus", "0-1\n");
        put(m_root / "cpuset/cpuset.mems", "0\n");
        put(m_root / "cpuset/corral/cpuset.cpus", "0-1\n");
        put(m_root / "cpuset/corral/cpuset.mems", "0\n");
        for (const char* file : {"cgroup.procs", "cpuset.cpus", "cpuset.mems"}) put(m_root / "cpuset/corral" / vm / file);
        for (const char* file : {"cgroup.procs", "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.cfs_burst_us"})
            put(m_root / "cpu/corral" / vm / file);
        for (const char* file : {"cgroup.procs", "memory.limit_in_bytes", "memory.move_charge_at_immigrate"})
            put(m_root / "memory/corral" / vm / file);
        for (const char* file : {"cgroup.procs", "blkio.weight"}) put(m_root / "blkio/corral" / vm / file);
        put(m_root / "cpuacct/corral" / vm / "cgroup.procs");
    }

    fs::path m_root;
};

inventory::VmLimits some_limits() {
    inventory::VmLimits limits;
    limits.cpu_weight = 300;
    limits.cpu_max_percent = 50;
    limits.memory_overhead_mib = 256;
    limits.io_weight = 200;
    limits.host_cpus = "1";
    return limits;
}

TEST_F(FakeTree, V2WritesEachLimitToItsControlFile) {
    const auto layout = CgroupLayout::fake(CgroupVersion::V2, m_root, "corral");
    put(m_root / "cgroup.subtree_control");
    v2_group(m_root / "corral");
    v2_group(m_root / "corral/web");
    auto warnings = apply_cgroup_limits(layout, "web", some_limits(), 512);
    ASSERT_TRUE(warnings) << warnings.error().describe();
    EXPECT_TRUE(warnings->empty());
    const fs::path vm = m_root / "corral/web";
    EXPECT_EQ(get(vm / "cpu.weight"), "300");
    EXPECT_EQ(get(vm / "cpu.max"), "50000 100000");  // half of one CPU per 100 ms period
    EXPECT_EQ(get(vm / "cpu.max.burst"), "10000");   // a fifth of the quota for the I/O threads
    EXPECT_EQ(get(vm / "memory.max"), std::to_string((512 + 256) << 20));
    EXPECT_EQ(get(vm / "io.weight"), "default 200");
    EXPECT_EQ(get(vm / "cpuset.cpus"), "1");
    // The controllers were enabled above the group (the last write of each file stays).
    EXPECT_EQ(get(m_root / "corral/cgroup.subtree_control"), "+cpuset");

    ASSERT_TRUE(attach_to_cgroup(layout, "web", 4242));
    EXPECT_EQ(get(vm / "cgroup.procs"), "4242");
}

TEST_F(FakeTree, V2LimitsClearedGoBackToTheKernelDefaults) {
    const auto layout = CgroupLayout::fake(CgroupVersion::V2, m_root, "corral");
    v2_group(m_root / "corral/web");
    ASSERT_TRUE(apply_cgroup_limits(layout, "web", some_limits(), 512));
    ASSERT_TRUE(apply_cgroup_limits(layout, "web", {}, 512));
    const fs::path vm = m_root / "corral/web";
    EXPECT_EQ(get(vm / "cpu.weight"), "100");
    EXPECT_EQ(get(vm / "cpu.max"), "max 100000");
    EXPECT_EQ(get(vm / "cpu.max.burst"), "0");
    EXPECT_EQ(get(vm / "memory.max"), "max");
    EXPECT_EQ(get(vm / "io.weight"), "default 100");
    EXPECT_EQ(get(vm / "cpuset.cpus"), "\n");  // empty: the parent's CPUs
}

TEST_F(FakeTree, V1WritesEachLimitToItsHierarchy) {
    const auto layout = CgroupLayout::fake(CgroupVersion::V1, m_root, "corral");
    v1_groups("web");
    auto warnings = apply_cgroup_limits(layout, "web", some_limits(), 512);
    ASSERT_TRUE(warnings) << warnings.error().describe();
    EXPECT_TRUE(warnings->empty());
    EXPECT_EQ(get(m_root / "cpu/corral/web/cpu.shares"), "3072");  // 300% of the default 1024
    EXPECT_EQ(get(m_root / "cpu/corral/web/cpu.cfs_period_us"), "100000");
    EXPECT_EQ(get(m_root / "cpu/corral/web/cpu.cfs_quota_us"), "50000");
    EXPECT_EQ(get(m_root / "cpu/corral/web/cpu.cfs_burst_us"), "10000");
    EXPECT_EQ(get(m_root / "memory/corral/web/memory.limit_in_bytes"), std::to_string((512 + 256) << 20));
    EXPECT_EQ(get(m_root / "blkio/corral/web/blkio.weight"), "1000");  // v2's 200 on v1's 10-1000 scale
    EXPECT_EQ(get(m_root / "cpuset/corral/web/cpuset.cpus"), "1");

    ASSERT_TRUE(apply_cgroup_limits(layout, "web", {}, 512));
    EXPECT_EQ(get(m_root / "cpu/corral/web/cpu.shares"), "1024");
    EXPECT_EQ(get(m_root / "cpu/corral/web/cpu.cfs_quota_us"), "-1");
    EXPECT_EQ(get(m_root / "memory/corral/web/memory.limit_in_bytes"), "-1");
    EXPECT_EQ(get(m_root / "blkio/corral/web/blkio.weight"), "500");
    EXPECT_EQ(get(m_root / "cpuset/corral/web/cpuset.cpus"), "0-1\n");  // the parent's

    ASSERT_TRUE(attach_to_cgroup(layout, "web", 4242));
    for (const char* controller : {"cpu", "cpuacct", "memory", "blkio", "cpuset"})
        EXPECT_EQ(get(m_root / controller / "corral/web/cgroup.procs"), "4242") << controller;
}

TEST_F(FakeTree, ALimitTheHostCannotEnforceIsAnErrorNamingTheField) {
    const auto layout = CgroupLayout::fake(CgroupVersion::V2, m_root, "corral");
    v2_group(m_root / "corral/web");
    fs::remove(m_root / "corral/web/cpu.max");  // the cpu controller is not enabled
    inventory::VmLimits limits;
    limits.cpu_max_percent = 50;
    auto applied = apply_cgroup_limits(layout, "web", limits, 512);
    ASSERT_FALSE(applied);
    EXPECT_EQ(applied.error().message(),
              "limits.cpu_max_percent: this host's cgroups have no cpu.max (is the controller enabled?)");
    // Without the limit set, the missing file is no reason to refuse.
    EXPECT_TRUE(apply_cgroup_limits(layout, "web", {}, 512));
}

TEST_F(FakeTree, AnIoWeightWithoutAWeightedSchedulerIsOnlyAWarning) {
    const auto layout = CgroupLayout::fake(CgroupVersion::V2, m_root, "corral");
    v2_group(m_root / "corral/web");
    fs::remove(m_root / "corral/web/io.weight");
    inventory::VmLimits limits;
    limits.io_weight = 200;
    auto applied = apply_cgroup_limits(layout, "web", limits, 512);
    ASSERT_TRUE(applied) << applied.error().describe();
    ASSERT_EQ(applied->size(), 1u);
    EXPECT_EQ(applied->front(), "limits.io_weight: this host's cgroups have no io.weight (is the controller enabled?)");
    // BFQ's file is used where the generic one is missing.
    put(m_root / "corral/web/io.bfq.weight");
    applied = apply_cgroup_limits(layout, "web", limits, 512);
    ASSERT_TRUE(applied);
    EXPECT_TRUE(applied->empty());
    EXPECT_EQ(get(m_root / "corral/web/io.bfq.weight"), "default 200");
}

TEST_F(FakeTree, StatsComeFromTheGroupsOwnCounters) {
    auto v2 = CgroupLayout::fake(CgroupVersion::V2, m_root / "v2", "corral");
    put(m_root / "v2/corral/web/cpu.stat", "usage_usec 5000000\nuser_usec 4000000\nsystem_usec 1000000\n"
                                           "nr_periods 100\nnr_throttled 40\nthrottled_usec 2000000\n");
    put(m_root / "v2/corral/web/memory.current", "104857600\n");
    put(m_root / "v2/corral/web/memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n");
    auto stats = read_cgroup_stats(v2, "web");
    ASSERT_TRUE(stats);
    EXPECT_EQ(stats->cpu_usage_usec, 5000000u);
    EXPECT_EQ(stats->cpu_throttled_usec, 2000000u);
    EXPECT_EQ(stats->cpu_throttled_periods, 40u);
    EXPECT_EQ(stats->memory_bytes, 104857600u);
    EXPECT_EQ(stats->memory_limit_hits, 7u);
    EXPECT_EQ(stats->oom_kills, 1u);

    auto v1 = CgroupLayout::fake(CgroupVersion::V1, m_root / "v1", "corral");
    put(m_root / "v1/cpu/corral/web/cpu.stat", "nr_periods 100\nnr_throttled 40\nthrottled_time 2000000000\n");
    put(m_root / "v1/cpuacct/corral/web/cpuacct.usage", "5000000000\n");
    put(m_root / "v1/memory/corral/web/memory.usage_in_bytes", "104857600\n");
    put(m_root / "v1/memory/corral/web/memory.failcnt", "7\n");
    put(m_root / "v1/memory/corral/web/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
    stats = read_cgroup_stats(v1, "web");
    ASSERT_TRUE(stats);
    EXPECT_EQ(stats->cpu_usage_usec, 5000000u);
    EXPECT_EQ(stats->cpu_throttled_usec, 2000000u);
    EXPECT_EQ(stats->cpu_throttled_periods, 40u);
    EXPECT_EQ(stats->memory_bytes, 104857600u);
    EXPECT_EQ(stats->memory_limit_hits, 7u);
    EXPECT_EQ(stats->oom_kills, 1u);

    EXPECT_EQ(read_cgroup_stats(v2, "other").error().errno_value(), ENOENT);
}

// /proc/self/mountinfo as this project's build machines have it: v1 hierarchies, a cgroup2 mount
// without controllers, corrald's memory group below the root.
constexpr const char* k_v1_mountinfo =
    "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n"
    "40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd\n"
    "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
constexpr const char* k_v1_self = "9:name=systemd:/\n7:blkio:/\n4:memory:/jobs/42\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

TEST(CgroupLayoutTest, V1HierarchiesWithCorraldsOwnGroups) {
    auto layout = CgroupLayout::from_texts(k_v1_mountinfo, k_v1_self, "", "corral");
    EXPECT_EQ(layout.version, CgroupVersion::V1);
    EXPECT_EQ(layout.vm_dir("web", "memory"), "/sys/fs/cgroup/memory/jobs/42/corral/web");
    EXPECT_EQ(layout.vm_dir("web", "cpu"), "/sys/fs/cgroup/cpu/corral/web");
    EXPECT_EQ(layout.vm_dir("web", "cpuacct"), "/sys/fs/cgroup/cpuacct/corral/web");
    EXPECT_EQ(layout.vm_dirs("web").size(), 5u);
    EXPECT_EQ(layout.describe()["version"], "v1");
}

TEST(CgroupLayoutTest, CombinedV1HierarchiesShareOneGroup) {
    const char* mountinfo = "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
                            "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
    auto layout = CgroupLayout::from_texts(mountinfo, "2:cpu,cpuacct:/svc\n1:memory:/svc\n", "", "corral");
    EXPECT_EQ(layout.version, CgroupVersion::V1);
    EXPECT_EQ(layout.vm_dir("web", "cpuacct"), "/sys/fs/cgroup/cpu,cpuacct/svc/corral/web");
    EXPECT_EQ(layout.vm_dirs("web").size(), 2u);
    EXPECT_EQ(layout.note, "v1 hierarchies without: blkio, cpuset");
}

TEST(CgroupLayoutTest, V2AsOnDebian12) {
    const char* mountinfo =
        "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 "
        "rw,nsdelegate,memory_recursiveprot\n";
    auto layout = CgroupLayout::from_texts(mountinfo, "0::/system.slice/corrald.service\n",
                                           "cpuset cpu io memory hugetlb pids rdma misc\n", "corral");
    EXPECT_EQ(layout.version, CgroupVersion::V2);
    EXPECT_EQ(layout.vm_dir("web", "memory"), "/sys/fs/cgroup/corral/web");
    EXPECT_EQ(layout.vm_dirs("web"), std::vector<fs::path>{"/sys/fs/cgroup/corral/web"});
    EXPECT_EQ(layout.note, "");
}

TEST(CgroupLayoutTest, NoCgroupsSaysWhy) {
    auto layout = CgroupLayout::from_texts("41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n", "0::/\n", "pids\n",
                                           "corral");
    EXPECT_EQ(layout.version, CgroupVersion::None);
    EXPECT_EQ(layout.note, "the cgroup2 mount /sys/fs/cgroup offers no cpu and memory controllers");
    EXPECT_FALSE(apply_cgroup_limits(layout, "web", {}, 512));
}

TEST(CpuListTest, ParsesAndFormatsTheKernelsSyntax) {
    EXPECT_EQ(parse_cpu_list("0-3,6").value(), (std::set<unsigned>{0, 1, 2, 3, 6}));
    EXPECT_EQ(format_cpu_list({0, 1, 2, 3, 6, 8, 9}), "0-3,6,8-9");
    for (const char* bad : {"", "a", "3-1", "1,", "-1", "1-2-3", "99999"})
        EXPECT_FALSE(parse_cpu_list(bad)) << bad;
    EXPECT_FALSE(host_online_cpus().empty());
}

}  // namespace
}  // namespace corral::daemon
