#include "daemon/vm_metrics.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "daemon/vcpu_threads.h"

namespace corral::daemon {
namespace fs = std::filesystem;

namespace {

uint64_t read_counter(const fs::path& path) {
    std::ifstream in(path);
    uint64_t value = 0;
    in >> value;
    return value;
}

}  // namespace

std::optional<uint64_t> cpu_ticks_from_proc_stat(std::string_view stat) {
    // Fields 14 and 15 are utime and stime; the command name (field 2) may hold spaces and
    // parentheses, so parse after its last closing parenthesis.
    auto paren = stat.rfind(')');
    if (paren == std::string_view::npos || paren + 2 > stat.size()) return std::nullopt;
    std::istringstream fields(std::string(stat.substr(paren + 2)));
    std::string field;
    uint64_t utime = 0;
    for (int index = 3; fields >> field; ++index) {
        if (index != 14 && index != 15) continue;
        uint64_t value = 0;
        try {
            value = std::stoull(field);
        } catch (const std::exception&) {
            return std::nullopt;
        }
        if (index == 14) utime = value;
        if (index == 15) return utime + value;
    }
    return std::nullopt;
}

VmMetrics collect_vm_metrics(pid_t pid, engine::Instance& instance, const std::vector<std::string>& taps) {
    VmMetrics metrics;
    std::ifstream stat_file(fmt::format("/proc/{}/stat", pid));
    std::string stat((std::istreambuf_iterator<char>(stat_file)), {});
    if (auto ticks = cpu_ticks_from_proc_stat(stat))
        metrics.cpu_seconds = static_cast<double>(*ticks) / static_cast<double>(sysconf(_SC_CLK_TCK));
    std::ifstream status(fmt::format("/proc/{}/status", pid));
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("VmRSS:", 0) == 0) metrics.memory_bytes = std::stoull(line.substr(6)) * 1024;
    }
    metrics.vcpu_run_delay_seconds = static_cast<double>(vcpu_sched_stat(pid).delay_ns) / 1e9;
    if (auto disks = instance.counters(); disks) metrics.disks = std::move(*disks);
    if (auto balloon = instance.balloon(); balloon) {
        metrics.guest_memory_free_bytes = balloon->guest_free_bytes;
        metrics.guest_memory_available_bytes = balloon->guest_available_bytes;
        metrics.guest_memory_total_bytes = balloon->guest_total_bytes;
    }
    for (const auto& tap : taps) {
        fs::path stats = fs::path("/sys/class/net") / tap / "statistics";
        // The tap's receive side is what the guest sent, and the other way round.
        metrics.nics.push_back({tap, read_counter(stats / "tx_bytes"), read_counter(stats / "rx_bytes"),
                                read_counter(stats / "tx_packets"), read_counter(stats / "rx_packets")});
    }
    return metrics;
}

}  // namespace corral::daemon
