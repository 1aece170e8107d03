#include "vmm/devices/legacy/boot_timing_port.h"

#include <utility>

#include "base/log.h"
#include "vmm/devices/legacy/byte_access.h"

namespace corral::vmm {
namespace {

constexpr uint64_t k_port_count = 1;

}  // namespace

BootTimingPort::BootTimingPort(Clock since_start)
    : m_since_start(since_start ? std::move(since_start)
                                : clock_since(std::chrono::steady_clock::now())) {
    m_marks.reserve(k_max_stored_marks);
}

BootTimingPort::Clock BootTimingPort::clock_since(
    std::chrono::steady_clock::time_point monitor_start) {
    return [monitor_start] {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
            std::chrono::steady_clock::now() - monitor_start);
    };
}

void BootTimingPort::read(uint64_t offset, std::span<uint8_t> data) {
    read_bytewise(offset, data, k_port_count, [](uint64_t) -> uint8_t { return 0; });
}

void BootTimingPort::write(uint64_t offset, std::span<const uint8_t> data) {
    write_bytewise(offset, data, k_port_count, [this](uint64_t, uint8_t value) { record(value); });
}

std::vector<BootMark> BootTimingPort::marks() const {
    std::lock_guard lock(m_mutex);
    return m_marks;
}

uint64_t BootTimingPort::mark_count() const {
    std::lock_guard lock(m_mutex);
    return m_mark_count;
}

void BootTimingPort::record(uint8_t code) {
    std::chrono::nanoseconds time = m_since_start();
    std::lock_guard lock(m_mutex);
    m_mark_count++;
    if (m_marks.size() < k_max_stored_marks) {
        m_marks.push_back(BootMark{code, time});
        log_info("guest boot mark {} at {:.3f} ms", code,
                 std::chrono::duration<double, std::milli>(time).count());
    } else if (m_mark_count == k_max_stored_marks + 1) {
        log_warning("guest wrote more than {} boot marks; counting further ones without logging",
                    k_max_stored_marks);
    }
}

}  // namespace corral::vmm
