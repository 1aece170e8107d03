#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace corral::daemon {

struct VmMetrics;

/// One reading of a VM's (or the host's) counters. Counters are cumulative, as read; rates are
/// made when a series is served, between the samples it uses.
struct MetricsSample {
    double time = 0;            ///< Unix time, seconds
    double cpu_seconds = 0;     ///< VM: its process's CPU time; host: busy time of all CPUs
    uint64_t memory_bytes = 0;  ///< VM: resident memory of its process; host: used (total - available)
    uint64_t disk_read_bytes = 0, disk_write_bytes = 0;  ///< summed over the VM's disks
    uint64_t net_rx_bytes = 0, net_tx_bytes = 0;         ///< summed over its NICs, as the guest sees them
    // VM only, for the "why is it slow" panel (host samples leave them 0):
    unsigned vcpus = 1;                ///< its vCPUs, to make run delay and throttling per-vCPU fractions
    double vcpu_run_delay_seconds = 0;  ///< time its vCPU threads waited for a host CPU
    double cpu_throttled_seconds = 0;   ///< time its cgroup's CPU cap held it back
    uint64_t disk_read_ops = 0, disk_write_ops = 0;          ///< summed over its disks
    uint64_t disk_read_time_ns = 0, disk_write_time_ns = 0;  ///< their total service time
};

/// A VM's sample from its live numbers, at `time`; `vcpus` is its vCPU count.
MetricsSample sample_of(const VmMetrics& metrics, double time, unsigned vcpus = 1);

/// The host's sample from the text of /proc/stat and /proc/meminfo; nullopt when they do not parse.
std::optional<MetricsSample> host_sample_from_proc(const std::string& stat, const std::string& meminfo, double time);

/// Samples at a fixed interval, the newest `capacity` of them (older ones drop off).
class SampleRing {
public:
    explicit SampleRing(size_t capacity) : m_capacity(capacity) {}
    void push(const MetricsSample& sample);
    /// Every sample at or after `since`, oldest first.
    std::vector<MetricsSample> since(double since) const;
    size_t size() const { return m_samples.size(); }

private:
    size_t m_capacity;
    std::deque<MetricsSample> m_samples;
};

/// How often samples are taken and how long they are kept: every `interval` for an hour, and
/// every 6 intervals for a day (10 s and 1 min by default: 360 + 1440 samples per VM).
struct HistoryTiers {
    std::chrono::seconds interval{10};
    std::chrono::seconds coarse_interval() const { return interval * 6; }
    size_t fine_capacity() const;    ///< an hour of `interval`
    size_t coarse_capacity() const;  ///< a day of coarse_interval()
};

/// The metrics history (docs/api.md "Metrics history"): each VM's and the host's samples in
/// ring buffers, in memory (a restart of corrald starts them again; they are for charts, and
/// Prometheus scraping /metrics is the record to keep). A thread of its own takes a sample
/// every interval; tests call record() directly.
class MetricsHistory {
public:
    /// What a tick reads: every VM's name with its sample, nullopt when it is not running.
    /// A VM missing from the list was deleted, and its history goes.
    using VmSource = std::function<std::vector<std::pair<std::string, std::optional<MetricsSample>>>(double now)>;
    using HostSource = std::function<std::optional<MetricsSample>(double now)>;

    MetricsHistory(HistoryTiers tiers, VmSource vms, HostSource host);
    /// Stops and joins the sampling thread.
    ~MetricsHistory();
    MetricsHistory(const MetricsHistory&) = delete;
    MetricsHistory& operator=(const MetricsHistory&) = delete;

    /// Called on the sampling thread after each tick is recorded, with what it read (the
    /// noisy-neighbour watch). Set before start().
    using TickObserver = std::function<void(const std::vector<std::pair<std::string, std::optional<MetricsSample>>>& vms,
                                            const std::optional<MetricsSample>& host)>;
    void on_tick(TickObserver observer) { m_observer = std::move(observer); }
    /// Starts sampling every tiers.interval, the first one at once.
    void start();
    /// Records one tick: `vms` and `host` as the sources would give them. Every 6th tick also
    /// goes into the coarse rings.
    void record(const std::vector<std::pair<std::string, std::optional<MetricsSample>>>& vms,
                const std::optional<MetricsSample>& host);

    /// A VM's series since `since` (Unix seconds) with points at least `step` seconds apart
    /// (empty when it has not run since corrald started).
    nlohmann::json vm_series(const std::string& name, double since, uint64_t step) const;
    /// The host's series, the same way.
    nlohmann::json host_series(double since, uint64_t step) const;

    const HistoryTiers& tiers() const { return m_tiers; }
    /// Whether the host's fine ring is full: corrald has sampled for the whole hour it keeps.
    bool sampled_an_hour() const;

private:
    struct Rings {
        explicit Rings(const HistoryTiers& tiers) : fine(tiers.fine_capacity()), coarse(tiers.coarse_capacity()) {}
        SampleRing fine;
        SampleRing coarse;
    };
    nlohmann::json series(const Rings& rings, double since, uint64_t step, bool host) const;
    void run();

    const HistoryTiers m_tiers;
    VmSource m_vm_source;
    HostSource m_host_source;
    TickObserver m_observer;
    mutable std::mutex m_mutex;  // guards m_vms, m_host, m_ticks
    std::map<std::string, Rings> m_vms;
    Rings m_host;
    uint64_t m_ticks = 0;

    std::mutex m_stop_mutex;  // guards m_stopping (with m_wake)
    std::condition_variable m_wake;
    bool m_stopping = false;
    std::thread m_thread;
};

/// Seconds since the Unix epoch, now, with sub-second precision.
double unix_now();

}  // namespace corral::daemon
