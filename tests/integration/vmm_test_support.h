#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "process_runner.h"

/// What the corral-vmm integration tests share: where the binaries are, whether KVM is usable,
/// and how to run the monitor.
namespace corral::testing {

/// The corral-vmm binary under test and the directory of the tiny guests (set by CMake).
inline const std::string k_vmm_path = CORRAL_VMM_PATH;
inline const std::string k_guest_dir = CORRAL_TINY_GUEST_DIR;

inline std::string tiny_guest(const std::string& name) { return k_guest_dir + "/" + name + ".elf"; }

/// True when /dev/kvm can be opened read-write (what the monitor needs).
bool kvm_usable();

/// The reason printed when a test skips for lack of KVM.
inline constexpr const char* k_no_kvm_reason = "no /dev/kvm on this machine; run through tools/lab";

/// Set to 1 (run_in_lab.sh does, inside the lab) to make a missing /dev/kvm a failure: where
/// KVM is supposed to exist, skipping would be passing silently.
bool kvm_required();

/// Runs corral-vmm with `args`.
ProcessResult run_vmm(const std::vector<std::string>& args,
                      std::chrono::milliseconds timeout = std::chrono::seconds(120));

/// A unix stream socket connected to `path`, retried until it listens or `limit` passed; -1 then.
int connect_when_ready(const std::string& path, std::chrono::seconds limit);

/// Reads from `fd` until `pattern` matches what was read, the peer closes, or `limit` passed;
/// returns all that was read.
std::string read_until(int fd, const std::regex& pattern, std::chrono::milliseconds limit);
/// The same, until the literal `text` has arrived.
std::string read_until(int fd, const std::string& text, std::chrono::milliseconds limit);

/// Sends one control request line on `fd` and parses the one answer line (`{"unparsable": ...}`
/// or `{"send": "failed"}` when there is none).
nlohmann::json control_request(int fd, const std::string& line,
                               std::chrono::milliseconds limit = std::chrono::seconds(60));

/// The numbers of the complete `count N ok` lines the counter guest printed in `text`; a
/// `count N BAD` line (the guest found its memory or registers changed) fails the test.
std::vector<int> counter_counts(const std::string& text);

/// Counts the non-overlapping occurrences of `needle` in `haystack`.
size_t count_occurrences(const std::string& haystack, const std::string& needle);

/// `text` in lower case (ASCII).
std::string lower(std::string text);

}  // namespace corral::testing

/// Skips the current test when KVM is unusable (fails instead when KVM is required).
#define CORRAL_REQUIRE_KVM()                                                    \
  do {                                                                          \
    if (!::corral::testing::kvm_usable()) {                                     \
      if (::corral::testing::kvm_required())                                    \
        FAIL() << "CORRAL_TEST_REQUIRE_KVM is set but /dev/kvm cannot be opened"; \
      GTEST_SKIP() << ::corral::testing::k_no_kvm_reason;                       \
    }                                                                           \
  } while (0)
