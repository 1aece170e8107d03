// corral-vmm's virtio-pci block and net devices driven by a minimal polling driver: the tiny
// guest guests/tiny/virtio.S reads and writes a raw disk file and exchanges one frame each way
// with a tap that lives in a network namespace of the test's own.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <optional>
#include <sstream>
#include <thread>

#include "../unit/net/private_netns.h"
#include "vmm_test_support.h"

namespace corral::testing {
namespace {

using namespace std::chrono_literals;

constexpr size_t k_sector_size = 512;
constexpr size_t k_disk_size = 1024 * 1024;  // 2048 sectors
const std::string k_disk_label = "corral-disk-0123";
constexpr uint8_t k_write_pattern_xor = 0x5A;  // the guest writes byte i of sector 1 as (i & 0xff) ^ 0x5a
constexpr uint16_t k_ethertype_local = 0x88B5;
const std::string k_powered_off_line = "corral-vmm: info: guest powered off (ACPI S5)\n";

/// A private temporary directory, removed with everything in it.
class TempDir {
public:
    TempDir() {
        std::string pattern = (std::filesystem::temp_directory_path() / "corral-virtio-XXXXXX").string();
        if (::mkdtemp(pattern.data()) != nullptr) m_path = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        if (!m_path.empty()) std::filesystem::remove_all(m_path, ignored);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    const std::filesystem::path& path() const { return m_path; }

private:
    std::filesystem::path m_path;
};

/// The module tree of kernel `release` as tools/guest-image builds it: its documented cache
/// path when that exists (running the tool costs ~25 s in the lab), else what the tool prints.
std::string guest_kernel_modules(const std::string& release) {
    const char* cache = std::getenv("CORRAL_CACHE");
    const char* home = std::getenv("HOME");
    std::string root = cache ? cache : std::string(home ? home : "/root") + "/.cache/corral";
    std::string cached = root + "/guest/amd64/modules/" + release;
    if (std::filesystem::exists(cached + "/kernel/drivers/net/tun.ko")) return cached;
    auto image = run_process(std::string(CORRAL_SOURCE_DIR) + "/tools/guest-image", {}, 300s);
    std::istringstream lines(image.out);
    for (std::string line; std::getline(lines, line);)
        if (line.starts_with("modules=")) return line.substr(8);
    return "";
}

/// Makes /dev/net/tun usable, or says why it cannot. The lab's kernel (the guest kernel of
/// tools/guest-image) has tun as a module that nothing loads, so it is loaded from that
/// kernel's module tree when the running kernel is that one; devtmpfs then adds the node.
std::optional<std::string> make_tun_available() {
    if (::access("/dev/net/tun", F_OK) == 0) return std::nullopt;
    utsname host{};
    ::uname(&host);
    std::string modules = guest_kernel_modules(host.release);
    if (modules.empty() || std::filesystem::path(modules).filename() != host.release)
        return "no /dev/net/tun, and tools/guest-image has no module tree for kernel " + std::string(host.release);
    std::string module = modules + "/kernel/drivers/net/tun.ko";
    UniqueFd fd(::open(module.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return "cannot open " + module + ": " + std::strerror(errno);
    if (::syscall(SYS_finit_module, fd.get(), "", 0) != 0 && errno != EEXIST)
        return "cannot load " + module + ": " + std::strerror(errno);
    for (int attempt = 0; attempt < 100 && ::access("/dev/net/tun", F_OK) != 0; ++attempt)
        std::this_thread::sleep_for(20ms);
    if (::access("/dev/net/tun", F_OK) != 0) {
        // No devtmpfs to create it: the node tun always has (misc 10:200).
        ::mkdir("/dev/net", 0755);
        if (::mknod("/dev/net/tun", S_IFCHR | 0600, ::makedev(10, 200)) != 0)
            return std::string("cannot create /dev/net/tun: ") + std::strerror(errno);
    }
    return std::nullopt;
}

/// A broadcast frame with EtherType 0x88b5 and `payload`, zero-padded to the 60-byte minimum.
std::vector<uint8_t> local_frame(const std::string& payload) {
    std::vector<uint8_t> frame(std::max<size_t>(60, 14 + payload.size()), 0);
    std::fill_n(frame.begin(), 6, 0xFF);
    const std::array<uint8_t, 6> source = {0x52, 0x54, 0x00, 0x0e, 0x57, 0x01};
    std::copy(source.begin(), source.end(), frame.begin() + 6);
    frame[12] = k_ethertype_local >> 8;
    frame[13] = k_ethertype_local & 0xFF;
    std::copy(payload.begin(), payload.end(), frame.begin() + 14);
    return frame;
}

bool is_local_frame(const std::vector<uint8_t>& frame) {
    return frame.size() >= 14 && frame[12] == (k_ethertype_local >> 8) && frame[13] == (k_ethertype_local & 0xFF);
}

TEST(VmmVirtioGuest, BlockReadWriteAndNetFramesBothWaysThroughATap) {
    CORRAL_REQUIRE_KVM();
    // Root first (loading tun needs it too), then tun, then the namespace helper's own checks.
    std::optional<std::string> no_tap;
    if (::geteuid() != 0) no_tap = "needs root to load tun, create a network namespace and a tap";
    if (!no_tap) no_tap = make_tun_available();
    if (!no_tap) no_tap = net::testing::netns_skip_reason();
    if (no_tap) {
        // Where KVM is required (the lab, as root), everything this test needs is there too.
        if (kvm_required()) FAIL() << *no_tap;
        GTEST_SKIP() << *no_tap;
    }

    TempDir dir;
    ASSERT_FALSE(dir.path().empty()) << "mkdtemp failed";
    const std::filesystem::path disk = dir.path() / "disk.raw";
    {
        std::ofstream out(disk, std::ios::binary);
        out << k_disk_label;
        out.seekp(k_disk_size - 1);
        out.put('\0');
        ASSERT_TRUE(out.good());
    }

    // The tap in a namespace of our own (no other traffic, no name clashes), handed to the
    // monitor as an inherited fd: dup() clears FD_CLOEXEC, so only this copy crosses exec.
    net::testing::NamespacedTap ns("cvirtio0");
    ASSERT_TRUE(ns.tap && ns.packet.valid()) << ns.error;
    UniqueFd inherited(::dup(ns.tap->fd()));
    ASSERT_TRUE(inherited.valid());

    auto vmm = std::async(std::launch::async, [&] {
        return run_vmm({"--kernel", tiny_guest("virtio"), "--memory", "64M", "--disk", "path=" + disk.string(),
                        "--net", "fd=" + std::to_string(inherited.get())},
                       240s);
    });

    // The guest's frame. It posts its receive buffer before it transmits, so once its frame is
    // out, the answer cannot arrive before there is a buffer for it.
    std::optional<std::vector<uint8_t>> guest_frame;
    auto give_up = std::chrono::steady_clock::now() + 200s;
    while (!guest_frame && std::chrono::steady_clock::now() < give_up &&
           vmm.wait_for(0s) != std::future_status::ready) {
        auto frame = ns.receive(500);
        if (frame && is_local_frame(*frame)) guest_frame = std::move(frame);
    }
    bool answered = guest_frame && ns.send(local_frame("corral-rx"));
    ProcessResult result = vmm.get();

    ASSERT_TRUE(guest_frame) << "no 0x88b5 frame came out of the tap\n" << result.describe();
    EXPECT_TRUE(answered) << "could not send the answer into the tap";
    const std::vector<uint8_t>& sent = *guest_frame;
    ASSERT_GE(sent.size(), 14u + 9u);
    EXPECT_TRUE(std::all_of(sent.begin(), sent.begin() + 6, [](uint8_t b) { return b == 0xFF; }))
        << "destination is not broadcast";
    EXPECT_EQ(std::string(sent.begin() + 14, sent.begin() + 14 + 9), "corral-tx");

    ASSERT_TRUE(result.exited_with(0)) << result.describe();
    const std::string& out = result.out;
    EXPECT_EQ(out.find("virtio FAIL"), std::string::npos) << result.describe();
    EXPECT_NE(out.find("blk capacity: " + std::to_string(k_disk_size / k_sector_size) + " sectors\n"),
              std::string::npos)
        << result.describe();
    EXPECT_NE(out.find("blk write ok\n"), std::string::npos) << result.describe();
    EXPECT_NE(out.find("blk read: " + k_disk_label + "\n"), std::string::npos) << result.describe();
    EXPECT_NE(out.find("net sent\n"), std::string::npos) << result.describe();
    EXPECT_NE(out.find("net got: corral-rx\n"), std::string::npos) << result.describe();
    EXPECT_TRUE(out.ends_with("virtio done\n")) << result.describe();
    EXPECT_TRUE(result.err.ends_with(k_powered_off_line)) << result.describe();

    // What the guest wrote is in the file: sector 1 holds the pattern, sector 0 is untouched.
    std::ifstream in(disk, std::ios::binary);
    std::vector<char> sectors(2 * k_sector_size);
    ASSERT_TRUE(in.read(sectors.data(), static_cast<std::streamsize>(sectors.size())));
    EXPECT_EQ(std::string(sectors.data(), k_disk_label.size()), k_disk_label);
    size_t mismatches = 0;
    for (size_t i = 0; i < k_sector_size; ++i)
        if (static_cast<uint8_t>(sectors[k_sector_size + i]) != (static_cast<uint8_t>(i) ^ k_write_pattern_xor))
            ++mismatches;
    EXPECT_EQ(mismatches, 0u) << "sector 1 does not hold the guest's pattern";
}

}  // namespace
}  // namespace corral::testing
