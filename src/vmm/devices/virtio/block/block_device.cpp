#include "vmm/devices/virtio/block/block_device.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "base/event_fd.h"
#include "base/log.h"
#include "base/unique_fd.h"
#include "storage/block_device.h"
#include "storage/qcow2/qcow2_image.h"
#include "vmm/devices/virtio/queue_service.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm::virtio {

using namespace block;

namespace {

void store_le(std::span<uint8_t> config, size_t offset, uint64_t value, size_t size) {
    for (size_t i = 0; i < size; ++i) config[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}

// struct virtio_blk_config offsets (§5.2.4).
constexpr size_t k_cfg_capacity = 0;
constexpr size_t k_cfg_seg_max = 12;
constexpr size_t k_cfg_blk_size = 20;
constexpr size_t k_cfg_max_discard_sectors = 36;
constexpr size_t k_cfg_max_discard_seg = 40;
constexpr size_t k_cfg_discard_sector_alignment = 44;
constexpr size_t k_cfg_max_write_zeroes_sectors = 48;
constexpr size_t k_cfg_max_write_zeroes_seg = 52;
constexpr size_t k_cfg_write_zeroes_may_unmap = 56;

constexpr uint32_t k_max_range_sectors = 1u << 22;  // 2 GiB per discard / write-zeroes request

}  // namespace

/// The per-disk worker thread (see the class comment of BlockDevice).
class BlockDevice::Worker {
public:
    Worker(BlockDevice& device, ActiveQueue queue, VirtioInterrupt& interrupt, RequestLimits limits,
           EventFd stop, UniqueFd timer)
        : m_device(device), m_queue(std::move(queue)), m_interrupt(interrupt), m_limits(limits),
          m_stop(std::move(stop)), m_timer(std::move(timer)) {
        m_thread = std::thread([this] { run(); });
        pthread_setname_np(m_thread.native_handle(), "virtio-blk");
    }
    ~Worker() { stop(); }

    /// Stops the thread, then completes the held-back request, if any, on the caller's thread,
    /// and gives the queue away (the worker is done with it).
    ActiveQueue drain() {
        stop();
        m_draining = true;
        process();
        return std::move(m_queue);
    }

private:
    void stop() {
        if (!m_thread.joinable()) return;
        m_stop.signal();
        m_thread.join();
    }
    void run();
    void process();
    /// Handles one chain; false when the rate limiter held it back (kept in m_pending).
    bool handle(DescriptorChain& chain);
    void arm_timer(std::chrono::nanoseconds delay);

    BlockDevice& m_device;
    ActiveQueue m_queue;
    VirtioInterrupt& m_interrupt;
    RequestLimits m_limits;
    EventFd m_stop;
    UniqueFd m_timer;
    // A chain popped but held back by the rate limiter; served first when the timer fires.
    std::optional<DescriptorChain> m_pending;
    bool m_draining = false;  // quiesce(): serve m_pending only, whatever the rate limit says
    std::thread m_thread;
};

void BlockDevice::Worker::run() {
    // Buffers made available before DRIVER_OK were notified to an unwatched eventfd: serve now.
    process();
    for (;;) {
        pollfd fds[3] = {{m_stop.fd(), POLLIN, 0}, {m_queue.notify_fd, POLLIN, 0}, {m_timer.get(), POLLIN, 0}};
        int n = ::poll(fds, 3, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            log_error("virtio-blk: poll failed: {}", std::strerror(errno));
            return;
        }
        if (fds[0].revents) return;
        if (fds[2].revents & POLLIN) drain_event_fd(m_timer.get());  // reads the expiration count
        if (fds[1].revents & POLLIN) drain_event_fd(m_queue.notify_fd);
        process();
    }
}

void BlockDevice::Worker::arm_timer(std::chrono::nanoseconds delay) {
    if (delay <= std::chrono::nanoseconds(0)) delay = std::chrono::nanoseconds(1);  // 0 would disarm
    itimerspec spec{};
    spec.it_value.tv_sec = static_cast<time_t>(delay.count() / 1'000'000'000);
    spec.it_value.tv_nsec = static_cast<long>(delay.count() % 1'000'000'000);
    if (::timerfd_settime(m_timer.get(), 0, &spec, nullptr) != 0)
        log_error("virtio-blk: timerfd_settime failed: {}", std::strerror(errno));
}

bool BlockDevice::Worker::handle(DescriptorChain& chain) {
    DeviceCounters& counters = m_device.m_counters;
    BlockCounters& block_counters = m_device.m_block_counters;
    auto parsed = parse_request(chain, m_limits);
    if (!parsed) {
        // No writable byte for the status: the driver cannot be told; give the chain back.
        ++counters.errors;
        ++block_counters.rejected_requests;
        ++block_counters.rejected_by_reason[static_cast<size_t>(parsed.error())];
        m_queue.queue.add_used(chain.head, 0);
        return true;
    }
    if (parsed->failed) {
        ++counters.requests;
        ++counters.errors;
        ++block_counters.rejected_requests;
        ++block_counters.rejected_by_reason[static_cast<size_t>(parsed->error)];
        if (parsed->error == RequestError::ReadOnly) ++block_counters.read_only_writes;
        *parsed->status = parsed->status_value;  // in guest RAM: checked when the chain was popped
        m_queue.queue.add_used(chain.head, 1);
        return true;
    }
    const Request& request = parsed->request;
    if (!m_draining) {
        uint64_t cost = request.type == RequestType::In || request.type == RequestType::Out ? request.data_bytes : 0;
        if (!m_device.m_limiter->consume(cost)) {
            ++block_counters.throttled;
            arm_timer(m_device.m_limiter->time_until_available(cost));
            m_pending = std::move(chain);
            return false;
        }
    }
    const auto started = std::chrono::steady_clock::now();
    Completion completion = execute_request(request, *m_device.m_disk, m_device.m_options.serial);
    const auto took = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - started).count());
    ++counters.requests;
    counters.bytes += completion.bytes_read + completion.bytes_written;
    block_counters.bytes_read += completion.bytes_read;
    block_counters.bytes_written += completion.bytes_written;
    if (request.type == RequestType::In) {
        ++block_counters.read_ops;
        block_counters.read_time_ns += took;
    } else if (request.type == RequestType::Out) {
        ++block_counters.write_ops;
        block_counters.write_time_ns += took;
    }
    if (completion.status != k_s_ok) ++counters.errors;
    *parsed->status = completion.status;  // in guest RAM: checked when the chain was popped
    m_queue.queue.add_used(chain.head, completion.written);
    return true;
}

void BlockDevice::Worker::process() {
    Virtqueue& queue = m_queue.queue;
    bool used_any = false;
    bool throttled = false;
    if (m_pending) {
        DescriptorChain chain = std::move(*m_pending);
        m_pending.reset();
        if (!handle(chain)) throttled = true;  // still too early: the timer is armed again
        else used_any = true;
    }
    // While draining, chains still in the avail ring stay there: they are served on resume.
    if (!throttled && !m_draining) {
        do {
            while (auto chain = queue.pop()) {
                if (!handle(*chain)) {
                    throttled = true;
                    break;
                }
                used_any = true;
            }
        } while (!throttled && queue.enable_notifications());
    }
    uint64_t rejected = queue.counters().rejected_chains;
    if (rejected != m_queue.rejected_reported) {
        m_device.m_counters.rejected_chains += rejected - m_queue.rejected_reported;
        m_queue.rejected_reported = rejected;
        used_any = true;  // rejected chains were returned used too
    }
    if (used_any && queue.should_interrupt()) m_interrupt.signal_queue(0);
    if (queue.broken() && !m_queue.broken_reported) {
        m_queue.broken_reported = true;
        ++m_device.m_counters.errors;
        m_interrupt.set_needs_reset();
    }
}

BlockDevice::BlockDevice(std::unique_ptr<storage::BlockDevice> disk, BlockOptions options)
    : m_disk(std::move(disk)), m_options(std::move(options)), m_capacity_sectors(m_disk->size() / k_sector_size),
      m_read_only(m_disk->read_only()) {
    if (m_options.serial.size() > k_id_bytes) m_options.serial.resize(k_id_bytes);
    m_limiter = std::make_unique<RateLimiter>(m_options.bandwidth, m_options.iops);
    std::span<uint8_t> config(m_config);
    store_le(config, k_cfg_capacity, m_capacity_sectors, 8);
    store_le(config, k_cfg_seg_max, k_queue_size - 2, 4);  // header and status take a descriptor each
    store_le(config, k_cfg_blk_size, k_sector_size, 4);
    uint64_t granularity = std::max<uint64_t>(m_disk->discard_granularity(), k_sector_size);
    store_le(config, k_cfg_max_discard_sectors, k_max_range_sectors, 4);
    store_le(config, k_cfg_max_discard_seg, 1, 4);
    store_le(config, k_cfg_discard_sector_alignment, granularity / k_sector_size, 4);
    store_le(config, k_cfg_max_write_zeroes_sectors, k_max_range_sectors, 4);
    store_le(config, k_cfg_max_write_zeroes_seg, 1, 4);
    store_le(config, k_cfg_write_zeroes_may_unmap, 1, 1);
}

BlockDevice::~BlockDevice() {
    reset();
    // Writes the guest did not flush still reach the image (qcow2 metadata caches included).
    if (!m_read_only)
        if (auto result = m_disk->flush(); !result)
            log_warning("virtio-blk: flushing the image at exit failed: {}", result.error().describe());
}

uint64_t BlockDevice::device_features() const {
    uint64_t features = k_f_seg_max | k_f_blk_size | k_f_flush;
    if (m_read_only) features |= k_f_ro;
    else features |= k_f_discard | k_f_write_zeroes;
    return features;
}

void BlockDevice::read_config(uint64_t offset, std::span<uint8_t> data) {
    // offset + size <= config_size(): checked by the transport.
    std::memcpy(data.data(), m_config.data() + offset, data.size());
}

Result<void> BlockDevice::activate(ActivateContext context) {
    reset();
    if (context.queues.empty() || !context.queues[0]) return fail("virtio-blk: the request queue is not enabled");
    RequestLimits limits{
        .capacity_sectors = m_capacity_sectors,
        .read_only = m_read_only,
        .discard = (context.features & k_f_discard) != 0,
        .write_zeroes = (context.features & k_f_write_zeroes) != 0,
        .max_discard_sectors = k_max_range_sectors,
        .max_write_zeroes_sectors = k_max_range_sectors,
        .max_data_bytes = k_max_data_bytes,
    };
    auto stop = TRY(EventFd::create(EFD_NONBLOCK | EFD_CLOEXEC));
    UniqueFd timer(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!timer.valid()) return fail_errno("virtio-blk: timerfd_create");
    std::lock_guard lock(m_mutex);
    m_worker = std::make_unique<Worker>(*this, std::move(*context.queues[0]), context.interrupt, limits,
                                        std::move(stop), std::move(timer));
    return {};
}

Result<bool> BlockDevice::internal_snapshot(const std::string& tag, bool remove) {
    {
        std::lock_guard lock(m_mutex);
        if (m_worker)
            return fail("virtio-blk: a disk snapshot needs the device quiesced first");
    }
    auto* image = dynamic_cast<storage::qcow2::Qcow2Image*>(m_disk.get());
    if (m_read_only || !image)
        return false;
    if (remove)
        TRY_VOID(image->delete_snapshot(tag));
    else
        TRY_VOID(image->create_snapshot(tag));
    TRY_VOID(image->flush());
    return true;
}

Result<storage::qcow2::BitmapRotation> BlockDevice::rotate_bitmaps(const std::string& name,
                                                                   const std::string& replaces) {
    {
        std::lock_guard lock(m_mutex);
        if (m_worker)
            return fail("virtio-blk: a bitmap rotation needs the device quiesced first");
    }
    auto* image = dynamic_cast<storage::qcow2::Qcow2Image*>(m_disk.get());
    if (!image)
        return fail(fmt::format("a {} disk keeps no bitmap", m_disk->format_name()), ENOTSUP);
    if (m_read_only)
        return fail("a read-only disk gets no new generation bitmap", ENOTSUP);
    return image->rotate_bitmaps(name, replaces);
}

void BlockDevice::hand_over_bitmaps() {
    if (auto* image = dynamic_cast<storage::qcow2::Qcow2Image*>(m_disk.get()))
        image->abandon_bitmaps();
}

std::vector<std::optional<ActiveQueue>> BlockDevice::quiesce() {
    std::vector<std::optional<ActiveQueue>> queues(1);
    std::unique_ptr<Worker> worker;
    {
        std::lock_guard lock(m_mutex);
        worker = std::move(m_worker);
    }
    if (!worker) return queues;
    queues[0] = worker->drain();
    worker.reset();
    // What the guest wrote is in the image (and not in a cache of this process) before a disk
    // snapshot is taken beside the memory snapshot.
    if (!m_read_only)
        if (auto result = m_disk->flush(); !result)
            log_warning("virtio-blk: flushing the image for a snapshot failed: {}", result.error().describe());
    return queues;
}

void BlockDevice::save_state(snapshot::StateWriter& writer) const {
    writer.section(snapshot::tag("VBLK"), 1, [&](snapshot::StateWriter& w) {
        w.u64(m_capacity_sectors);
        w.boolean(m_read_only);
    });
}

Result<void> BlockDevice::restore_state(snapshot::StateReader& reader) {
    uint64_t capacity = 0;
    bool read_only = false;
    reader.section(snapshot::tag("VBLK"), 1, [&](snapshot::StateReader& r, uint16_t) {
        capacity = r.u64();
        read_only = r.boolean();
    });
    TRY_VOID(reader.finish());
    if (capacity != m_capacity_sectors)
        return fail(ErrorKind::Invalid, fmt::format("virtio-blk: the snapshot's disk has {} sectors, this image {}",
                                                    capacity, m_capacity_sectors));
    if (read_only != m_read_only)
        return fail(ErrorKind::Invalid, fmt::format("virtio-blk: the snapshot's disk was {}, this one is {}",
                                                    read_only ? "read-only" : "writable",
                                                    m_read_only ? "read-only" : "writable"));
    return {};
}

void BlockDevice::reset() {
    std::unique_ptr<Worker> worker;
    {
        std::lock_guard lock(m_mutex);
        worker = std::move(m_worker);
    }
    worker.reset();  // signals the stop eventfd and joins: the worker no longer touches guest memory
}

}  // namespace corral::vmm::virtio
