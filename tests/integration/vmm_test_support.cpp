#include "vmm_test_support.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace corral::testing {

int connect_when_ready(const std::string& path, std::chrono::seconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, path.c_str(), sizeof(address.sun_path) - 1);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) return fd;
        ::close(fd);
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return -1;
}

namespace {

/// Reads from `fd` until `found(received)`, the peer closes, or `limit` passed.
template <typename Found>
std::string read_until_found(int fd, Found found, std::chrono::milliseconds limit) {
    std::string received;
    timeval tick{0, 200 * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tick, sizeof tick);
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (!found(received) && std::chrono::steady_clock::now() < deadline) {
        char buffer[512];
        ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        if (n == 0) break;
        if (n > 0) received.append(buffer, static_cast<size_t>(n));
    }
    return received;
}

}  // namespace

std::string read_until(int fd, const std::regex& pattern, std::chrono::milliseconds limit) {
    return read_until_found(fd, [&](const std::string& received) { return std::regex_search(received, pattern); },
                            limit);
}

std::string read_until(int fd, const std::string& text, std::chrono::milliseconds limit) {
    return read_until_found(
        fd, [&](const std::string& received) { return received.find(text) != std::string::npos; }, limit);
}

nlohmann::json control_request(int fd, const std::string& line, std::chrono::milliseconds limit) {
    std::string text = line + "\n";
    if (::send(fd, text.data(), text.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(text.size()))
        return {{"send", "failed"}};
    std::string answer = read_until(fd, std::string("\n"), limit);
    auto document = nlohmann::json::parse(answer, nullptr, false);
    return document.is_discarded() ? nlohmann::json{{"unparsable", answer}} : document;
}

std::vector<int> counter_counts(const std::string& text) {
    std::vector<int> found;
    std::regex line("count (\\d+) (ok|BAD)\n");
    for (auto it = std::sregex_iterator(text.begin(), text.end(), line); it != std::sregex_iterator(); ++it) {
        EXPECT_EQ((*it)[2].str(), "ok") << "the guest found its memory or registers changed:\n" << text;
        found.push_back(std::stoi((*it)[1].str()));
    }
    return found;
}

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
