#include "vmm_test_support.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>

namespace corral::testing {

bool kvm_usable() {
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

bool kvm_required() {
  const char* value = std::getenv("CORRAL_TEST_REQUIRE_KVM");
  return value != nullptr && std::strcmp(value, "1") == 0;
}

ProcessResult run_vmm(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  return run_process(k_vmm_path, args, timeout);
}

size_t count_occurrences(const std::string& haystack, const std::string& needle) {
  if (needle.empty()) return 0;
  size_t count = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + needle.size()))
    ++count;
  return count;
}

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace corral::testing
