// corral-vmm's command line as a user meets it: --help, and bad input rejected with a message
// that names what to fix. Flag validation must not need KVM (fail fast, before touching it).
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "vmm_test_support.h"

namespace corral::testing {
namespace {

constexpr int k_exit_bad_input = 2;

/// A file in a fresh temporary directory, removed with the fixture.
class TempFile {
 public:
  explicit TempFile(const std::string& name) {
    std::string pattern = ::testing::TempDir() + "corral-vmm-test-XXXXXX";
    char* made = ::mkdtemp(pattern.data());
    if (made != nullptr) m_dir = made;
    m_path = m_dir + "/" + name;
  }
  ~TempFile() {
    std::remove(m_path.c_str());
    if (!m_dir.empty()) ::rmdir(m_dir.c_str());
  }
  const std::string& path() const { return m_path; }
  bool write(const std::string& content) {
    std::ofstream file(m_path, std::ios::binary);
    file << content;
    return static_cast<bool>(file);
  }

 private:
  std::string m_dir;
  std::string m_path;
};

TEST(VmmCommandLine, HelpExitsZeroAndListsTheFlags) {
  auto result = run_vmm({"--help"}, std::chrono::seconds(30));
  ASSERT_TRUE(result.exited_with(0)) << result.describe();
  std::string text = result.out + result.err;
  for (const char* flag : {"--kernel", "--memory", "--cpus", "--cmdline"})
    EXPECT_NE(text.find(flag), std::string::npos) << "--help does not mention " << flag << "\n"
                                                  << result.describe();
}

struct BadFlag {
  std::string test_name;
  std::vector<std::string> extra_args;
  std::string named;  // what the message must name, compared case-insensitively
};

void PrintTo(const BadFlag& flag, std::ostream* out) {
  *out << "corral-vmm --kernel hello.elf";
  for (const auto& arg : flag.extra_args) *out << ' ' << arg;
}

class VmmRejectsBadFlag : public ::testing::TestWithParam<BadFlag> {};

TEST_P(VmmRejectsBadFlag, ExitsTwoNamingTheFlag) {
  std::vector<std::string> args{"--kernel", tiny_guest("hello")};
  args.insert(args.end(), GetParam().extra_args.begin(), GetParam().extra_args.end());
  auto result = run_vmm(args, std::chrono::seconds(30));
  EXPECT_TRUE(result.exited_with(k_exit_bad_input)) << result.describe();
  EXPECT_NE(lower(result.err).find(GetParam().named), std::string::npos)
      << "the message does not name '" << GetParam().named << "'\n" << result.describe();
  EXPECT_EQ(result.out, "") << "nothing may reach the guest console\n" << result.describe();
}

std::string bad_flag_name(const ::testing::TestParamInfo<BadFlag>& info) {
  return info.param.test_name;
}

INSTANTIATE_TEST_SUITE_P(Flags, VmmRejectsBadFlag,
                         ::testing::Values(BadFlag{"MemoryZero", {"--memory", "0"}, "memory"},
                                           BadFlag{"MemoryNotANumber", {"--memory", "lots"}, "memory"},
                                           BadFlag{"CpusZero", {"--cpus", "0"}, "cpus"},
                                           BadFlag{"CpusThousand", {"--cpus", "1000"}, "cpus"},
                                           BadFlag{"CpusNegative", {"--cpus", "-1"}, "cpus"},
                                           BadFlag{"UnknownFlag", {"--no-such-flag"}, "--no-such-flag"}),
                         bad_flag_name);

TEST(VmmCommandLine, NoKernelIsBadInput) {
  auto result = run_vmm({"--memory", "64M"}, std::chrono::seconds(30));
  EXPECT_TRUE(result.exited_with(k_exit_bad_input)) << result.describe();
  EXPECT_NE(lower(result.err).find("kernel"), std::string::npos) << result.describe();
}

// Kernel-file problems are the user's input too: read and checked before KVM is touched, exit 2,
// and the message names the file.
void expect_rejected_kernel(const ProcessResult& result, const std::string& path) {
  ASSERT_EQ(result.ending, ProcessResult::Ending::Exited) << result.describe();
  EXPECT_EQ(result.exit_code, k_exit_bad_input) << result.describe();
  EXPECT_NE(result.err.find(path), std::string::npos)
      << "the message does not name the kernel file\n" << result.describe();
  EXPECT_EQ(result.out, "") << result.describe();
}

TEST(VmmKernelFile, MissingFileIsRejectedNamingIt) {
  TempFile file("no-such-kernel.elf");  // never written
  auto result = run_vmm({"--kernel", file.path(), "--memory", "64M"}, std::chrono::seconds(60));
  expect_rejected_kernel(result, file.path());
}

TEST(VmmKernelFile, TextFileIsRejectedNamingIt) {
  TempFile file("not-a-kernel.txt");
  ASSERT_TRUE(file.write("this is a text file, not a kernel\n"));
  auto result = run_vmm({"--kernel", file.path(), "--memory", "64M"}, std::chrono::seconds(60));
  expect_rejected_kernel(result, file.path());
}

TEST(VmmKernelFile, TruncatedElfIsRejectedNamingIt) {
  // The ELF header and program headers of a real guest, without the segment they describe.
  std::ifstream real(tiny_guest("hello"), std::ios::binary);
  std::string head(200, '\0');
  real.read(head.data(), static_cast<std::streamsize>(head.size()));
  ASSERT_EQ(real.gcount(), 200);
  TempFile file("truncated.elf");
  ASSERT_TRUE(file.write(head));
  auto result = run_vmm({"--kernel", file.path(), "--memory", "64M"}, std::chrono::seconds(60));
  expect_rejected_kernel(result, file.path());
}

}  // namespace
}  // namespace corral::testing
