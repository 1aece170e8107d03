#include "daemon/vcpu_threads.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

namespace corral::daemon {
namespace fs = std::filesystem;

namespace {

std::optional<unsigned> number_at(std::string_view text) {
    unsigned value = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end == text.data()) return std::nullopt;
    return value;
}

std::string read_line(const fs::path& file) {
    std::ifstream in(file);
    std::string line;
    std::getline(in, line);
    return line;
}

}  // namespace

std::optional<unsigned> vcpu_index_of_thread(std::string_view comm) {
    if (comm.starts_with("CPU ")) {
        const auto slash = comm.find('/');
        if (slash == std::string_view::npos || slash == 4) return std::nullopt;
        auto index = number_at(comm.substr(4, slash - 4));
        if (!index || comm.substr(4, slash - 4).size() != std::to_string(*index).size()) return std::nullopt;
        return index;
    }
    if (comm.starts_with("vcpu") && comm.size() > 4) {
        auto index = number_at(comm.substr(4));
        if (!index || comm.size() - 4 != std::to_string(*index).size()) return std::nullopt;
        return index;
    }
    return std::nullopt;
}

std::vector<VcpuThread> vcpu_threads(pid_t pid, const fs::path& proc) {
    std::vector<VcpuThread> threads;
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(proc / std::to_string(pid) / "task", error)) {
        auto tid = number_at(entry.path().filename().string());
        if (!tid) continue;
        if (auto index = vcpu_index_of_thread(read_line(entry.path() / "comm")))
            threads.push_back({*index, static_cast<pid_t>(*tid)});
    }
    std::sort(threads.begin(), threads.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
    return threads;
}

std::optional<SchedStat> parse_schedstat(std::string_view text) {
    std::istringstream fields{std::string(text)};
    SchedStat stat;
    uint64_t slices = 0;
    if (!(fields >> stat.run_ns >> stat.delay_ns >> slices)) return std::nullopt;
    return stat;
}

SchedStat vcpu_sched_stat(pid_t pid, const fs::path& proc) {
    SchedStat sum;
    for (const auto& thread : vcpu_threads(pid, proc)) {
        const auto path = proc / std::to_string(pid) / "task" / std::to_string(thread.tid) / "schedstat";
        if (auto stat = parse_schedstat(read_line(path))) {
            sum.run_ns += stat->run_ns;
            sum.delay_ns += stat->delay_ns;
        }
    }
    return sum;
}

Result<std::vector<unsigned>> parse_vcpu_pins(std::string_view text) {
    std::vector<unsigned> pins;
    std::string_view rest = text;
    while (true) {
        const auto comma = rest.find(',');
        const auto part = rest.substr(0, comma);
        auto cpu = number_at(part);
        if (part.empty() || part.size() > 4 || !cpu || part.size() != std::to_string(*cpu).size())
            return fail(fmt::format("'{}' is not a list of host CPU numbers, one per vCPU in order, like 2,3", text),
                        EINVAL);
        pins.push_back(*cpu);
        if (comma == std::string_view::npos) return pins;
        rest.remove_prefix(comma + 1);
    }
}

Result<std::vector<std::string>> pin_vcpus(pid_t pid, const std::vector<unsigned>& pins,
                                           const std::vector<unsigned>& all_cpus) {
    std::vector<std::string> warnings;
    const auto threads = vcpu_threads(pid);
    for (const auto& thread : threads) {
        cpu_set_t set;
        CPU_ZERO(&set);
        if (pins.empty()) {
            for (unsigned cpu : all_cpus) CPU_SET(cpu, &set);
        } else if (thread.index < pins.size()) {
            CPU_SET(pins[thread.index], &set);
        } else {
            continue;
        }
        if (::sched_setaffinity(thread.tid, sizeof(set), &set) != 0)
            return fail_errno(fmt::format("limits.vcpu_pins: cannot pin vCPU {} (thread {})", thread.index, thread.tid));
    }
    for (size_t index = 0; index < pins.size(); ++index)
        if (std::none_of(threads.begin(), threads.end(), [&](const auto& t) { return t.index == index; }))
            warnings.push_back(fmt::format("limits.vcpu_pins: no thread of vCPU {} found in process {}", index, pid));
    return warnings;
}

}  // namespace corral::daemon
