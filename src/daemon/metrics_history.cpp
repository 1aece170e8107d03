#include "daemon/metrics_history.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "daemon/vm_metrics.h"

namespace corral::daemon {

namespace {

constexpr size_t k_coarse_every = 6;  // ticks per coarse sample (HistoryTiers::coarse_interval)

/// A rate between two readings of a counter; null when it went backwards (the VM process was
/// restarted, so its counters began again) or across a gap.
nlohmann::json rate(double before, double after, double seconds, bool gap) {
    if (gap || after < before || seconds <= 0)
        return nullptr;
    return (after - before) / seconds;
}

/// The share of each vCPU's time a per-VM time counter grew by: 0..1 (a reading that straddles
/// a tick can overshoot a little, and the monitor's own threads count too: capped at 1).
nlohmann::json per_vcpu_fraction(double before, double after, double seconds, unsigned vcpus, bool gap) {
    auto per_second = rate(before, after, seconds, gap);
    if (per_second.is_null())
        return nullptr;
    return std::clamp(per_second.get<double>() / std::max(1u, vcpus), 0.0, 1.0);
}

/// Mean milliseconds per operation between two readings; null when no operation completed in
/// between (no latency to speak of, rather than 0) or the counters began again.
nlohmann::json latency_ms(uint64_t ops_before, uint64_t ops_after, uint64_t ns_before, uint64_t ns_after, bool gap) {
    if (gap || ops_after <= ops_before || ns_after < ns_before)
        return nullptr;
    return static_cast<double>(ns_after - ns_before) / static_cast<double>(ops_after - ops_before) / 1e6;
}

}  // namespace

double unix_now() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

MetricsSample sample_of(const VmMetrics& metrics, double time, unsigned vcpus) {
    MetricsSample sample;
    sample.time = time;
    sample.cpu_seconds = metrics.cpu_seconds;
    sample.memory_bytes = metrics.memory_bytes;
    sample.vcpus = std::max(1u, vcpus);
    sample.vcpu_run_delay_seconds = metrics.vcpu_run_delay_seconds;
    sample.cpu_throttled_seconds = metrics.cpu_throttled_seconds;
    for (const auto& disk : metrics.disks) {
        sample.disk_read_bytes += disk.read_bytes;
        sample.disk_write_bytes += disk.write_bytes;
        sample.disk_read_ops += disk.read_ops;
        sample.disk_write_ops += disk.write_ops;
        sample.disk_read_time_ns += disk.read_time_ns;
        sample.disk_write_time_ns += disk.write_time_ns;
    }
    for (const auto& nic : metrics.nics) {
        sample.net_rx_bytes += nic.rx_bytes;
        sample.net_tx_bytes += nic.tx_bytes;
    }
    return sample;
}

std::optional<MetricsSample> host_sample_from_proc(const std::string& stat, const std::string& meminfo, double time) {
    // proc(5): "cpu  user nice system idle iowait irq softirq steal guest guest_nice" in clock
    // ticks; guest time is inside user already. Busy = all but idle and iowait.
    std::istringstream lines(stat);
    std::string line;
    MetricsSample sample;
    sample.time = time;
    bool have_cpu = false;
    while (std::getline(lines, line)) {
        if (!line.starts_with("cpu "))
            continue;
        std::istringstream fields(line.substr(4));
        uint64_t value[8] = {};
        for (auto& each : value)
            if (!(fields >> each))
                return std::nullopt;
        const uint64_t busy = value[0] + value[1] + value[2] + value[5] + value[6] + value[7];
        sample.cpu_seconds = static_cast<double>(busy) / static_cast<double>(::sysconf(_SC_CLK_TCK));
        have_cpu = true;
        break;
    }
    std::optional<uint64_t> total, available;
    std::istringstream memory(meminfo);
    while (std::getline(memory, line)) {
        std::istringstream fields(line);
        std::string key;
        uint64_t kib = 0;
        if (!(fields >> key >> kib))
            continue;
        if (key == "MemTotal:")
            total = kib * 1024;
        if (key == "MemAvailable:")
            available = kib * 1024;
    }
    if (!have_cpu || !total || !available || *available > *total)
        return std::nullopt;
    sample.memory_bytes = *total - *available;
    return sample;
}

void SampleRing::push(const MetricsSample& sample) {
    m_samples.push_back(sample);
    while (m_samples.size() > m_capacity)
        m_samples.pop_front();
}

std::vector<MetricsSample> SampleRing::since(double since) const {
    std::vector<MetricsSample> out;
    for (const auto& sample : m_samples)
        if (sample.time >= since)
            out.push_back(sample);
    return out;
}

size_t HistoryTiers::fine_capacity() const {
    return static_cast<size_t>(std::max<int64_t>(1, 3600 / std::max<int64_t>(1, interval.count())));
}

size_t HistoryTiers::coarse_capacity() const {
    return static_cast<size_t>(std::max<int64_t>(1, 86400 / std::max<int64_t>(1, coarse_interval().count())));
}

MetricsHistory::MetricsHistory(HistoryTiers tiers, VmSource vms, HostSource host)
    : m_tiers(tiers), m_vm_source(std::move(vms)), m_host_source(std::move(host)), m_host(m_tiers) {}

MetricsHistory::~MetricsHistory() {
    {
        std::lock_guard lock(m_stop_mutex);
        m_stopping = true;
    }
    m_wake.notify_all();
    if (m_thread.joinable())
        m_thread.join();
}

void MetricsHistory::start() {
    m_thread = std::thread([this] { run(); });
}

void MetricsHistory::run() {
    auto next = std::chrono::steady_clock::now();
    std::unique_lock lock(m_stop_mutex);
    while (!m_stopping) {
        lock.unlock();
        const double now = unix_now();
        auto vms = m_vm_source ? m_vm_source(now) : decltype(m_vm_source(now)){};
        auto host = m_host_source ? m_host_source(now) : std::nullopt;
        record(vms, host);
        if (m_observer) m_observer(vms, host);
        lock.lock();
        // On a fixed grid: a slow tick does not shift the ones after it.
        next += m_tiers.interval;
        m_wake.wait_until(lock, next, [this] { return m_stopping; });
    }
}

void MetricsHistory::record(const std::vector<std::pair<std::string, std::optional<MetricsSample>>>& vms,
                            const std::optional<MetricsSample>& host) {
    std::lock_guard lock(m_mutex);
    const bool coarse = m_ticks++ % k_coarse_every == 0;
    std::map<std::string, Rings> kept;
    for (const auto& [name, sample] : vms) {
        auto it = m_vms.find(name);
        if (!sample) {
            // Not running: its history stays (a chart of the last hour after a stop), unchanged.
            if (it != m_vms.end())
                kept.emplace(name, std::move(it->second));
            continue;
        }
        Rings rings = it != m_vms.end() ? std::move(it->second) : Rings(m_tiers);
        rings.fine.push(*sample);
        if (coarse)
            rings.coarse.push(*sample);
        kept.emplace(name, std::move(rings));
    }
    m_vms = std::move(kept);  // deleted VMs' histories go
    if (host) {
        m_host.fine.push(*host);
        if (coarse)
            m_host.coarse.push(*host);
    }
}

nlohmann::json MetricsHistory::vm_series(const std::string& name, double since, uint64_t step) const {
    std::lock_guard lock(m_mutex);
    auto it = m_vms.find(name);
    if (it == m_vms.end())
        return series(Rings(m_tiers), since, step, false);
    return series(it->second, since, step, false);
}

bool MetricsHistory::sampled_an_hour() const {
    std::lock_guard lock(m_mutex);
    return m_host.fine.size() >= m_tiers.fine_capacity();
}

nlohmann::json MetricsHistory::host_series(double since, uint64_t step) const {
    std::lock_guard lock(m_mutex);
    return series(m_host, since, step, true);
}

nlohmann::json MetricsHistory::series(const Rings& rings, double since, uint64_t step, bool host) const {
    // The fine ring holds the last hour: a step of a coarse interval or more, or a start
    // before that hour, is served from the coarse ring (a day).
    const double fine_span = static_cast<double>(m_tiers.interval.count() * m_tiers.fine_capacity());
    const bool coarse =
        step >= static_cast<uint64_t>(m_tiers.coarse_interval().count()) || since < unix_now() - fine_span;
    const SampleRing& ring = coarse ? rings.coarse : rings.fine;
    const double interval = static_cast<double>((coarse ? m_tiers.coarse_interval() : m_tiers.interval).count());
    // One sample before `since` as the base of the first point's rates.
    auto samples = ring.since(since - interval);
    std::vector<MetricsSample> kept;
    for (const auto& sample : samples) {
        // Half an interval of slack: ticks land a little late now and then. A sample less than
        // half an interval after the last one (a slow tick, then the grid's next one at once) is
        // left out even without a step: a rate over a few clock ticks of /proc/stat is noise
        // (a host "5 CPUs busy" on 2 CPUs).
        if (kept.empty() ||
            sample.time - kept.back().time >= std::max(static_cast<double>(step), interval) - interval / 2)
            kept.push_back(sample);
    }
    nlohmann::json time = nlohmann::json::array(), cpu = nlohmann::json::array(), memory = nlohmann::json::array(),
                   disk_read = nlohmann::json::array(), disk_write = nlohmann::json::array(),
                   net_rx = nlohmann::json::array(), net_tx = nlohmann::json::array(),
                   run_delay = nlohmann::json::array(), throttled = nlohmann::json::array(),
                   read_latency = nlohmann::json::array(), write_latency = nlohmann::json::array();
    for (size_t i = 1; i < kept.size(); ++i) {
        const auto& before = kept[i - 1];
        const auto& after = kept[i];
        if (after.time < since)
            continue;
        const double seconds = after.time - before.time;
        // Samples further apart than the step allows mean the VM was not running in between:
        // a gap in the chart, not a rate averaged over it.
        const bool gap = seconds > std::max(static_cast<double>(step), interval) + 2 * interval;
        time.push_back(std::round(after.time * 1000) / 1000);
        cpu.push_back(rate(before.cpu_seconds, after.cpu_seconds, seconds, gap));
        memory.push_back(after.memory_bytes);
        auto bytes = [&](uint64_t MetricsSample::*counter) {
            return rate(static_cast<double>(before.*counter), static_cast<double>(after.*counter), seconds, gap);
        };
        disk_read.push_back(bytes(&MetricsSample::disk_read_bytes));
        disk_write.push_back(bytes(&MetricsSample::disk_write_bytes));
        net_rx.push_back(bytes(&MetricsSample::net_rx_bytes));
        net_tx.push_back(bytes(&MetricsSample::net_tx_bytes));
        run_delay.push_back(per_vcpu_fraction(before.vcpu_run_delay_seconds, after.vcpu_run_delay_seconds, seconds,
                                              after.vcpus, gap));
        throttled.push_back(
            per_vcpu_fraction(before.cpu_throttled_seconds, after.cpu_throttled_seconds, seconds, after.vcpus, gap));
        read_latency.push_back(latency_ms(before.disk_read_ops, after.disk_read_ops, before.disk_read_time_ns,
                                          after.disk_read_time_ns, gap));
        write_latency.push_back(latency_ms(before.disk_write_ops, after.disk_write_ops, before.disk_write_time_ns,
                                           after.disk_write_time_ns, gap));
    }
    nlohmann::json answer = {{"interval_seconds", static_cast<uint64_t>(interval)},
                             {"step_seconds", std::max<uint64_t>(step, static_cast<uint64_t>(interval))},
                             {"since", since},
                             {"time", time},
                             {"cpu", cpu},
                             {"memory_bytes", memory}};
    if (!host) {
        answer["disk_read_bytes_per_second"] = disk_read;
        answer["disk_write_bytes_per_second"] = disk_write;
        answer["net_rx_bytes_per_second"] = net_rx;
        answer["net_tx_bytes_per_second"] = net_tx;
        answer["vcpu_run_delay"] = run_delay;
        answer["cpu_throttled"] = throttled;
        answer["disk_read_latency_ms"] = read_latency;
        answer["disk_write_latency_ms"] = write_latency;
    }
    return answer;
}

}  // namespace corral::daemon
