#include "vmm/devices/virtio/balloon/balloon_device.h"

#include <sys/mman.h>
#include <sys/timerfd.h>

#include <cstring>

#include <fmt/format.h>

#include "base/log.h"
#include "vmm/devices/virtio/queue_service.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm::virtio {

namespace {

constexpr size_t index_of(BalloonDevice::Role role) {
    return static_cast<size_t>(role);
}

// Statistic tags (virtio 1.2 §5.5.6.3); values are bytes.
constexpr uint16_t k_stat_memfree = 4;
constexpr uint16_t k_stat_memtot = 5;
constexpr uint16_t k_stat_avail = 6;
constexpr size_t k_stat_size = 10;  // le16 tag + le64 value, packed

uint32_t load_le32(const uint8_t* bytes) {
    uint32_t value;
    std::memcpy(&value, bytes, sizeof value);  // x86-64 is little-endian, like virtio 1.x
    return value;
}

}  // namespace

BalloonDevice::BalloonDevice(std::shared_ptr<EventLoop> loop, std::chrono::milliseconds stats_interval)
    : m_loop(std::move(loop)), m_stats_interval(stats_interval) {}

void BalloonDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
    std::array<uint8_t, 8> config;
    const uint32_t num_pages = m_num_pages.load(), actual = m_actual.load();
    std::memcpy(config.data(), &num_pages, 4);
    std::memcpy(config.data() + 4, &actual, 4);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = offset + i < config.size() ? config[offset + i] : 0;
}

void BalloonDevice::write_config(uint64_t offset, std::span<const uint8_t> data) {
    // Only `actual` (bytes 4-7) is the driver's to write; num_pages is the device's.
    uint32_t actual = m_actual.load();
    auto* bytes = reinterpret_cast<uint8_t*>(&actual);
    for (size_t i = 0; i < data.size(); ++i)
        if (offset + i >= 4 && offset + i < 8)
            bytes[offset + i - 4] = data[i];
    m_actual.store(actual);
}

Result<void> BalloonDevice::activate(ActivateContext context) {
    stop();
    // §5.5.2: inflateq and deflateq always; statsq and reporting_vq only with their features, each
    // taking the next index (free_page_vq would sit between them; F_FREE_PAGE_HINT is not offered).
    std::array<std::optional<uint16_t>, index_of(Role::Count)> indices;
    uint16_t next = 0;
    indices[index_of(Role::Inflate)] = next++;
    indices[index_of(Role::Deflate)] = next++;
    if (context.features & k_f_stats_vq)
        indices[index_of(Role::Stats)] = next++;
    if (context.features & k_f_page_reporting)
        indices[index_of(Role::Reporting)] = next++;
    for (size_t role = 0; role < indices.size(); ++role) {
        if (!indices[role] || *indices[role] >= context.queues.size() || !context.queues[*indices[role]]) {
            if (role <= index_of(Role::Deflate))
                return fail("virtio-balloon: the inflate and deflate queues must be enabled");
            continue;
        }
        m_queues[role].active.emplace(std::move(*context.queues[*indices[role]]));
        m_queues[role].index = *indices[role];
    }
    m_memory = &context.memory;
    {
        std::lock_guard lock(m_control_mutex);
        m_interrupt = &context.interrupt;
    }
    for (size_t role = 0; role < m_queues.size(); ++role) {
        if (!m_queues[role].active)
            continue;
        auto added = m_loop->add(m_queues[role].active->notify_fd, [this, role] { process(static_cast<Role>(role)); });
        if (!added) {
            stop();
            return added;
        }
    }
    if (m_queues[index_of(Role::Stats)].active && m_stats_interval.count() > 0) {
        m_timer = UniqueFd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
        if (!m_timer.valid()) {
            stop();
            return fail_errno("virtio-balloon: cannot create the stats timer");
        }
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(m_stats_interval).count();
        itimerspec every{};
        every.it_interval.tv_sec = ns / 1'000'000'000;
        every.it_interval.tv_nsec = ns % 1'000'000'000;
        every.it_value = every.it_interval;
        ::timerfd_settime(m_timer.get(), 0, &every, nullptr);
        auto added = m_loop->add(m_timer.get(), [this] {
            drain_event_fd(m_timer.get());  // a timerfd reads as 8 bytes, like an eventfd
            request_stats();
        });
        if (!added) {
            stop();
            return added;
        }
    }
    // Buffers made available before DRIVER_OK were notified to unwatched eventfds: serve now.
    m_loop->run_sync([this] {
        for (size_t role = 0; role < m_queues.size(); ++role)
            process(static_cast<Role>(role));
    });
    return {};
}

void BalloonDevice::stop_watching() {
    for (auto& queue : m_queues)
        if (queue.active)
            m_loop->remove(queue.active->notify_fd);  // after this, process() is not running
    if (m_timer.valid()) {
        m_loop->remove(m_timer.get());
        m_timer = UniqueFd();
    }
}

void BalloonDevice::stop() {
    stop_watching();
    for (auto& queue : m_queues) queue.active.reset();
    m_stats_head.reset();
    m_memory = nullptr;
    std::lock_guard lock(m_control_mutex);
    m_interrupt = nullptr;
}

void BalloonDevice::reset() {
    stop();
    // num_pages is the host's wish and survives a reset; actual is the driver's, which starts
    // over (activate() after a snapshot's restore_state() keeps the restored one).
    m_actual.store(0);
}

std::vector<std::optional<ActiveQueue>> BalloonDevice::quiesce() {
    std::vector<std::optional<ActiveQueue>> queues(m_queue_sizes.size());
    stop_watching();
    release_stats_chain();
    for (auto& queue : m_queues) {
        if (queue.active)
            queues[queue.index] = std::move(queue.active);
        queue.active.reset();
    }
    m_memory = nullptr;
    std::lock_guard lock(m_control_mutex);
    m_interrupt = nullptr;
    return queues;
}

void BalloonDevice::save_state(snapshot::StateWriter& writer) const {
    writer.section(snapshot::tag("VBAL"), 1, [&](snapshot::StateWriter& w) {
        w.u32(m_num_pages.load());
        w.u32(m_actual.load());
    });
}

Result<void> BalloonDevice::restore_state(snapshot::StateReader& reader) {
    uint32_t num_pages = 0, actual = 0;
    reader.section(snapshot::tag("VBAL"), 1, [&](snapshot::StateReader& r, uint16_t) {
        num_pages = r.u32();
        actual = r.u32();
    });
    TRY_VOID(reader.finish());
    m_num_pages.store(num_pages);
    m_actual.store(actual);
    return {};
}

void BalloonDevice::set_target_pages(uint32_t pages) {
    m_num_pages.store(pages);
    std::lock_guard lock(m_control_mutex);
    if (m_interrupt)
        m_interrupt->signal_config_change();  // §5.5.6: the driver re-reads num_pages
}

BalloonStatus BalloonDevice::status() const {
    BalloonStatus status;
    status.target_pages = m_num_pages.load();
    status.actual_pages = m_actual.load();
    status.discarded_pages = m_discarded_pages.load();
    status.reported_bytes = m_reported_bytes.load();
    status.rejected_pfns = m_rejected_pfns.load();
    std::lock_guard lock(m_stats_mutex);
    status.stats = m_stats;
    return status;
}

bool BalloonDevice::discard(uint8_t* host, uint64_t length) {
    if (length == 0)
        return true;
    // Anonymous private RAM: the pages are freed and read back as zeros. (RAM mapped from a
    // snapshot's file reads back the file's page instead; the guest gave the page up either way.)
    if (::madvise(host, length, MADV_DONTNEED) == 0)
        return true;
    ++m_counters.errors;  // hugetlbfs RAM cannot give back 4 KiB pieces: the pages stay
    return false;
}

void BalloonDevice::discard_pfns(const DescriptorChain& chain) {
    uint8_t* run = nullptr;  // a run of pages contiguous in host memory, discarded at once
    uint64_t run_length = 0;
    uint32_t seen = 0;
    std::array<uint8_t, 4> partial{};
    size_t partial_size = 0;
    for (const GuestBuffer& buffer : chain.readable) {
        // buffer.host covers buffer.length bytes of guest RAM (checked when popped). A PFN may
        // straddle two buffers: its bytes are gathered in `partial`.
        for (uint32_t i = 0; i < buffer.length && seen < k_max_pfns_per_chain; ++i) {
            partial[partial_size++] = buffer.host[i];
            if (partial_size < partial.size())
                continue;
            partial_size = 0;
            ++seen;
            const uint64_t address = uint64_t{load_le32(partial.data())} * k_page_size;
            // The PFN is the guest's: host_pointer() checks the whole page is RAM.
            uint8_t* page = m_memory->host_pointer(address, k_page_size);
            if (!page) {
                ++m_rejected_pfns;
                continue;
            }
            ++m_discarded_pages;
            if (run && page == run + run_length) {
                run_length += k_page_size;
                continue;
            }
            if (run)
                discard(run, run_length);
            run = page;
            run_length = k_page_size;
        }
    }
    if (run)
        discard(run, run_length);
    if (seen == k_max_pfns_per_chain)
        ++m_counters.errors;  // the rest of an oversized buffer is ignored
}

void BalloonDevice::discard_ranges(const DescriptorChain& chain) {
    auto each = [&](const GuestBuffer& buffer) {
        // Checked against RAM when popped; only the whole 4 KiB pages inside are given back
        // (guest RAM is page-aligned in host memory, so guest and host page boundaries agree).
        const auto start = reinterpret_cast<uintptr_t>(buffer.host);
        const uintptr_t first = (start + k_page_size - 1) & ~(k_page_size - 1);
        const uintptr_t end = (start + buffer.length) & ~(k_page_size - 1);
        if (end <= first)
            return;
        if (discard(reinterpret_cast<uint8_t*>(first), end - first))
            m_reported_bytes += end - first;
    };
    for (const GuestBuffer& buffer : chain.readable)
        each(buffer);
    for (const GuestBuffer& buffer : chain.writable)
        each(buffer);
}

void BalloonDevice::read_stats(const DescriptorChain& chain) {
    std::vector<uint8_t> bytes;
    for (const GuestBuffer& buffer : chain.readable) {
        const size_t take = std::min<size_t>(buffer.length, k_max_stats_bytes - bytes.size());
        bytes.insert(bytes.end(), buffer.host, buffer.host + take);  // checked when popped
        if (bytes.size() == k_max_stats_bytes)
            break;
    }
    BalloonGuestStats stats;
    for (size_t at = 0; at + k_stat_size <= bytes.size(); at += k_stat_size) {
        uint16_t tag;
        uint64_t value;
        std::memcpy(&tag, bytes.data() + at, sizeof tag);
        std::memcpy(&value, bytes.data() + at + 2, sizeof value);
        if (tag == k_stat_memfree)
            stats.free_bytes = value;
        if (tag == k_stat_memtot)
            stats.total_bytes = value;
        if (tag == k_stat_avail)
            stats.available_bytes = value;
    }
    std::lock_guard lock(m_stats_mutex);
    stats.updates = m_stats.updates + 1;
    m_stats = stats;
}

void BalloonDevice::process(Role role) {
    Queue& queue = m_queues[index_of(role)];
    if (!queue.active || !m_interrupt)
        return;
    if (role != Role::Stats) {
        serve_queue(*queue.active, queue.index, *m_interrupt, m_counters, [&](const DescriptorChain& chain) {
            ++m_counters.requests;
            if (role == Role::Inflate)
                discard_pfns(chain);
            if (role == Role::Reporting)
                discard_ranges(chain);
            return 0u;  // the device writes nothing into balloon buffers
        });
        return;
    }
    // The stats queue (§5.5.6.3): the device keeps the driver's one buffer until it wants fresh
    // statistics. A second buffer (a confused driver) makes the device give the older one back.
    ActiveQueue& active = *queue.active;
    drain_event_fd(active.notify_fd);
    bool used_any = false;
    do {
        while (auto chain = active.queue.pop()) {
            ++m_counters.requests;
            read_stats(*chain);
            if (m_stats_head) {
                active.queue.add_used(*m_stats_head, 0);
                used_any = true;
            }
            m_stats_head = chain->head;
        }
    } while (active.queue.enable_notifications());
    if (uint64_t rejected = active.queue.counters().rejected_chains; rejected != active.rejected_reported) {
        m_counters.rejected_chains += rejected - active.rejected_reported;
        active.rejected_reported = rejected;
        used_any = true;
    }
    if (used_any && active.queue.should_interrupt())
        m_interrupt->signal_queue(queue.index);
    if (active.queue.broken() && !active.broken_reported) {
        active.broken_reported = true;
        ++m_counters.errors;
        m_interrupt->set_needs_reset();
    }
}

void BalloonDevice::request_stats() {
    release_stats_chain();
}

void BalloonDevice::release_stats_chain() {
    Queue& queue = m_queues[index_of(Role::Stats)];
    if (!queue.active || !m_stats_head || !m_interrupt)
        return;
    queue.active->queue.add_used(*m_stats_head, 0);
    m_stats_head.reset();
    if (queue.active->queue.should_interrupt())
        m_interrupt->signal_queue(queue.index);
}

}  // namespace corral::vmm::virtio
