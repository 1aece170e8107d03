#include "daemon/noisy_neighbour.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace corral::daemon {
namespace {

using namespace noisy_thresholds;

/// What one VM did between its previous sample and this one.
struct Interval {
    double seconds = 0;
    double cpu_seconds = 0;  ///< CPU time its process used
    double run_delay = 0;    ///< waiting for a host CPU, as a fraction of its vCPUs' time (0..1)
};

std::optional<Interval> interval_between(const MetricsSample& before, const MetricsSample& after) {
    const double seconds = after.time - before.time;
    if (!(seconds > 0))
        return std::nullopt;
    Interval interval;
    interval.seconds = seconds;
    interval.cpu_seconds = std::max(0.0, after.cpu_seconds - before.cpu_seconds);
    const double vcpus = std::max(1u, after.vcpus);
    interval.run_delay =
        std::clamp((after.vcpu_run_delay_seconds - before.vcpu_run_delay_seconds) / (seconds * vcpus), 0.0, 1.0);
    return interval;
}

std::string percent(double fraction) {
    return fmt::format("{:.0f}%", fraction * 100);
}

}  // namespace

std::vector<nlohmann::json> NoisyNeighbourWatch::observe(const Readings& vms) {
    std::vector<nlohmann::json> events;
    std::map<std::string, Interval> intervals;
    for (const auto& [name, sample] : vms) {
        if (!sample)
            continue;
        auto it = m_vms.find(name);
        if (it != m_vms.end())
            if (auto interval = interval_between(it->second.last, *sample))
                intervals.emplace(name, *interval);
    }

    for (auto& [name, interval] : intervals) {
        Watched& watched = m_vms.at(name);
        auto forget_streak = [&watched] {
            watched.suffering = 0;
            watched.delay_sum = 0;
            watched.suffering_seconds = 0;
            watched.neighbour_cpu_seconds.clear();
        };
        if (interval.run_delay >= k_suffering_run_delay) {
            watched.fine = 0;
            ++watched.suffering;
            watched.delay_sum += interval.run_delay;
            watched.suffering_seconds += interval.seconds;
            for (const auto& [other, theirs] : intervals)
                if (other != name)
                    watched.neighbour_cpu_seconds[other] += theirs.cpu_seconds;
        } else {
            watched.fine = interval.run_delay < k_recovered_run_delay ? watched.fine + 1 : 0;
            if (!watched.raised)
                forget_streak();  // "in a row": a calmer interval starts the count again
        }

        if (!watched.raised && watched.suffering >= k_hold_intervals && !watched.neighbour_cpu_seconds.empty()) {
            auto noisiest = std::max_element(watched.neighbour_cpu_seconds.begin(), watched.neighbour_cpu_seconds.end(),
                                             [](const auto& a, const auto& b) { return a.second < b.second; });
            const double cpus = noisiest->second / watched.suffering_seconds;
            if (cpus >= k_noisy_cpus) {
                const double delay = watched.delay_sum / watched.suffering;
                watched.raised = true;
                events.push_back(
                    {{"kind", "vm.noisy_neighbour"},
                     {"target", name},
                     {"neighbour", noisiest->first},
                     {"run_delay", std::round(delay * 1000) / 1000},
                     {"neighbour_cpus", std::round(cpus * 100) / 100},
                     {"message",
                      fmt::format("{} waited for a host CPU {} of its vCPUs' time over the last {:.0f} s while {} "
                                  "used {:.2f} CPUs; pin them apart (limits.vcpu_pins), or cap {} (corral vm edit {} "
                                  "--cpu-max N%)",
                                  name, percent(delay), watched.suffering_seconds, noisiest->first, cpus,
                                  noisiest->first, noisiest->first)}});
            }
        }
        if (watched.raised && watched.fine >= k_hold_intervals) {
            events.push_back({{"kind", "vm.noisy_neighbour.cleared"},
                              {"target", name},
                              {"message", fmt::format("{} no longer waits for a host CPU (run delay under {} for {} "
                                                      "samples in a row)",
                                                      name, percent(k_recovered_run_delay), watched.fine)}});
            watched.raised = false;
            watched.fine = 0;
            forget_streak();
        }
    }

    // The VMs that run now are the ones watched; one that stopped while it suffered is cleared.
    std::map<std::string, Watched> next;
    for (const auto& [name, sample] : vms) {
        if (!sample)
            continue;
        auto it = m_vms.find(name);
        Watched watched = it != m_vms.end() ? std::move(it->second) : Watched{};
        if (it != m_vms.end())
            m_vms.erase(it);
        watched.last = *sample;
        next.emplace(name, std::move(watched));
    }
    for (const auto& [name, gone] : m_vms)
        if (gone.raised)
            events.push_back({{"kind", "vm.noisy_neighbour.cleared"},
                              {"target", name},
                              {"message", fmt::format("{} stopped (it was waiting for a host CPU)", name)}});
    m_vms = std::move(next);
    return events;
}

}  // namespace corral::daemon
