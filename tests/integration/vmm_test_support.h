#pragma once

#include <gtest/gtest.h>

#include <chrono>
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
