// corral-vmm booting the tiny guests of guests/tiny on KVM. Each guest proves itself by what it
// prints on COM1 (the monitor's stdout) and by how the monitor ends (exit code, stderr).
#include <gtest/gtest.h>

#include <ctime>
#include <regex>

#include "vmm_test_support.h"

namespace corral::testing {
namespace {

using std::chrono::seconds;

constexpr int k_exit_clean = 0;    // the guest powered off or reset
constexpr int k_exit_crashed = 1;  // triple fault or internal error

// The monitor's last line on stderr for each way a guest ends (main.cpp: "<reason> (<detail>)"
// at info level, "<reason>: <detail>" at error level for a crash).
const std::string k_powered_off_line = "corral-vmm: info: guest powered off (ACPI S5)\n";
const std::regex k_reset_line("corral-vmm: info: guest reset\\b[^\n]*\n$");

/// The lines of `text` that are exactly `line` (with its newline).
size_t count_lines(const std::string& text, const std::string& line) {
  size_t count = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    end = end == std::string::npos ? text.size() : end + 1;
    if (text.compare(pos, end - pos, line) == 0) ++count;
    pos = end;
  }
  return count;
}

TEST(VmmTinyGuest, HelloPrintsGreetingMarksBootAndResets) {
  CORRAL_REQUIRE_KVM();
  auto result = run_vmm({"--kernel", tiny_guest("hello"), "--memory", "64M"});
  ASSERT_TRUE(result.exited_with(k_exit_clean)) << result.describe();
  EXPECT_EQ(result.out, "Hello from corral tiny guest\n") << result.describe();
  std::regex boot_mark("corral-vmm: info: guest boot mark 1 at [0-9]+(\\.[0-9]+)? ms\n");
  EXPECT_TRUE(std::regex_search(result.err, boot_mark)) << result.describe();
  EXPECT_TRUE(std::regex_search(result.err, k_reset_line)) << result.describe();
}

TEST(VmmTinyGuest, ResetThroughCf9ExitsZero) {
  CORRAL_REQUIRE_KVM();
  auto result = run_vmm({"--kernel", tiny_guest("reset_cf9"), "--memory", "64M"});
  ASSERT_TRUE(result.exited_with(k_exit_clean)) << result.describe();
  EXPECT_EQ(result.out, "resetting via 0xcf9\n") << result.describe();
  EXPECT_TRUE(std::regex_search(result.err, k_reset_line)) << result.describe();
}

TEST(VmmTinyGuest, TripleFaultIsACrashWithAMessage) {
  CORRAL_REQUIRE_KVM();
  auto result = run_vmm({"--kernel", tiny_guest("triple_fault"), "--memory", "64M"});
  ASSERT_TRUE(result.exited_with(k_exit_crashed)) << result.describe();
  EXPECT_EQ(result.out, "about to fault\n") << result.describe();
  // KVM resets the vCPU before the exit: the message says how far the guest got instead (its
  // last exits were the serial port's, writing "about to fault").
  const std::regex crashed(
      "corral-vmm: error: guest crashed: vCPU 0 triple fault \\(KVM_EXIT_SHUTDOWN\\) after "
      "\\d+ exits; the last: [^\n]*io write 0x3f8[^\n]*\n");
  EXPECT_TRUE(std::regex_search(result.err, crashed)) << result.describe();
}

TEST(VmmTinyGuest, HostileAccessesAreLoggedOnceAndSurvived) {
  CORRAL_REQUIRE_KVM();
  // 64 MiB: the guest also touches 1 GiB, which must then be unbacked.
  auto result = run_vmm({"--kernel", tiny_guest("hostile"), "--memory", "64M"});
  ASSERT_TRUE(result.exited_with(k_exit_clean)) << result.describe();
  EXPECT_EQ(result.out, "survived unhandled accesses\n") << result.describe();
  const std::string& err = result.err;
  auto logged = [&](const std::string& what) {
    return count_lines(err, "corral-vmm: info: unhandled " + what + " (logged once)\n");
  };
  // The MMIO nobody backs, touched first: each address and direction once.
  EXPECT_EQ(logged("MMIO write 0xd0000000"), 1u) << result.describe();
  EXPECT_EQ(logged("MMIO read 0xd0000000"), 1u) << result.describe();
  EXPECT_EQ(logged("MMIO write 0xfebff008"), 1u) << result.describe();
  EXPECT_EQ(logged("MMIO read 0x40000000"), 1u) << result.describe();
  // Ports: 0x100-0x10f are written and read twice, logged once per direction.
  EXPECT_EQ(logged("port write 0x80"), 1u) << result.describe();
  EXPECT_EQ(logged("port write 0x100"), 1u) << result.describe();
  EXPECT_EQ(logged("port read 0x100"), 1u) << result.describe();
  EXPECT_EQ(logged("port read 0x10f"), 1u) << result.describe();
  // Logging is bounded: the sweep of 0x100-0x1ff alone is 512 distinct accesses; the monitor
  // logs 256 in all, says so once, and the guest still runs to its end.
  EXPECT_EQ(count_occurrences(err, " (logged once)\n"), 256u) << result.describe();
  EXPECT_EQ(count_lines(err, "corral-vmm: warning: 256 distinct unhandled addresses seen; "
                             "no longer logging new ones\n"),
            1u)
      << result.describe();
  EXPECT_EQ(logged("port write 0x1ff"), 0u) << result.describe();
  EXPECT_TRUE(std::regex_search(err, k_reset_line)) << result.describe();
  EXPECT_LT(count_occurrences(err, "\n"), 300u) << result.describe();
}

class VmmSmp : public ::testing::TestWithParam<int> {};

TEST_P(VmmSmp, EveryCpuComesUpThroughInitSipiSipi) {
  CORRAL_REQUIRE_KVM();
  int cpus = GetParam();
  auto result = run_vmm({"--kernel", tiny_guest("smp"), "--memory", "64M", "--cpus", std::to_string(cpus)},
                        seconds(240));
  ASSERT_TRUE(result.exited_with(k_exit_clean)) << result.describe();
  EXPECT_NE(result.out.find("mp table: " + std::to_string(cpus) + " cpus\n"), std::string::npos)
      << result.describe();
  for (int cpu = 0; cpu < cpus; ++cpu)
    EXPECT_EQ(count_occurrences(result.out, "cpu " + std::to_string(cpu) + " up\n"), 1u)
        << "cpu " << cpu << "\n" << result.describe();
  EXPECT_EQ(count_occurrences(result.out, " up\n"), static_cast<size_t>(cpus) + 1)  // + "all N cpus up"
      << result.describe();
  EXPECT_NE(result.out.find("all " + std::to_string(cpus) + " cpus up\n"), std::string::npos)
      << result.describe();
  EXPECT_EQ(result.out.find("timeout"), std::string::npos) << result.describe();
}

INSTANTIATE_TEST_SUITE_P(Cpus, VmmSmp, ::testing::Values(1, 2, 4),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return std::to_string(info.param) + "cpus";
                         });

std::tm utc(std::time_t when) {
  std::tm out{};
  ::gmtime_r(&when, &out);
  return out;
}

TEST(VmmTinyGuest, DevicesPort61AndRtcShowHostUtcTime) {
  CORRAL_REQUIRE_KVM();
  std::time_t before = std::time(nullptr);
  auto result = run_vmm({"--kernel", tiny_guest("devices"), "--memory", "64M"});
  std::time_t after = std::time(nullptr);
  ASSERT_TRUE(result.exited_with(k_exit_clean)) << result.describe();
  // Port 0x61 (KVM's in-kernel PIT speaker port): what the guest reports on failure says
  // which part is broken; "reads 0xff" means no one emulates the port at all (for KVM to,
  // the PIT must be created with KVM_PIT_SPEAKER_DUMMY).
  EXPECT_TRUE(result.out.starts_with("port61 refresh toggles\n"
                                     "port61 gate ok\n"
                                     "port61 pit ch2 output ok\n"
                                     "rtc regB=02\n"))
      << result.describe();
  EXPECT_EQ(result.err, k_powered_off_line) << result.describe();

  std::smatch m;
  std::regex line("rtc (\\d{4})-(\\d\\d)-(\\d\\d) (\\d\\d):(\\d\\d):(\\d\\d) valid=([0-9a-f]{2})\n");
  ASSERT_TRUE(std::regex_search(result.out, m, line)) << result.describe();
  EXPECT_EQ(m[7].str(), "80") << "register D must say the time is valid\n" << result.describe();

  std::tm guest{};
  guest.tm_year = std::stoi(m[1]) - 1900;
  guest.tm_mon = std::stoi(m[2]) - 1;
  guest.tm_mday = std::stoi(m[3]);
  guest.tm_hour = std::stoi(m[4]);
  guest.tm_min = std::stoi(m[5]);
  guest.tm_sec = std::stoi(m[6]);
  // The date is the host's UTC date, at the start or the end of the run (midnight rollover).
  auto same_day = [&](const std::tm& host) {
    return host.tm_year == guest.tm_year && host.tm_mon == guest.tm_mon && host.tm_mday == guest.tm_mday;
  };
  EXPECT_TRUE(same_day(utc(before)) || same_day(utc(after))) << result.describe();
  // And the time was read during the run (the RTC counts whole seconds: allow one either side).
  std::time_t guest_time = ::timegm(&guest);
  EXPECT_GE(guest_time, before - 1) << result.describe();
  EXPECT_LE(guest_time, after + 1) << result.describe();
}

}  // namespace
}  // namespace corral::testing
