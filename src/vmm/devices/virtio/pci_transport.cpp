#include "vmm/devices/virtio/pci_transport.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <sys/eventfd.h>

#include <fmt/format.h>

#include "base/log.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm::virtio {
namespace {

// virtio_pci_cap cfg_type values (§4.1.4).
constexpr uint8_t k_cap_common = 1;
constexpr uint8_t k_cap_notify = 2;
constexpr uint8_t k_cap_isr = 3;
constexpr uint8_t k_cap_device = 4;
constexpr uint8_t k_cap_pci_cfg = 5;
constexpr uint8_t k_cap_vendor_id = 0x09;

// Common configuration layout (§4.1.4.3).
constexpr uint64_t k_device_feature_select = 0x00;
constexpr uint64_t k_device_feature = 0x04;
constexpr uint64_t k_driver_feature_select = 0x08;
constexpr uint64_t k_driver_feature = 0x0C;
constexpr uint64_t k_config_msix_vector = 0x10;
constexpr uint64_t k_num_queues = 0x12;
constexpr uint64_t k_device_status = 0x14;
constexpr uint64_t k_config_generation = 0x15;
constexpr uint64_t k_queue_select = 0x16;
constexpr uint64_t k_queue_size = 0x18;
constexpr uint64_t k_queue_msix_vector = 0x1A;
constexpr uint64_t k_queue_enable = 0x1C;
constexpr uint64_t k_queue_notify_off = 0x1E;
constexpr uint64_t k_queue_desc = 0x20;
constexpr uint64_t k_queue_driver = 0x28;
constexpr uint64_t k_queue_device = 0x30;

struct Field {
    uint64_t offset;
    uint64_t size;
};
constexpr std::array<Field, 16> k_fields = {{{k_device_feature_select, 4}, {k_device_feature, 4},
                                             {k_driver_feature_select, 4}, {k_driver_feature, 4},
                                             {k_config_msix_vector, 2}, {k_num_queues, 2},
                                             {k_device_status, 1}, {k_config_generation, 1},
                                             {k_queue_select, 2}, {k_queue_size, 2},
                                             {k_queue_msix_vector, 2}, {k_queue_enable, 2},
                                             {k_queue_notify_off, 2}, {k_queue_desc, 8},
                                             {k_queue_driver, 8}, {k_queue_device, 8}}};

using CommonImage = std::array<uint8_t, VirtioPciTransport::k_common_size>;

void put(CommonImage& image, uint64_t offset, uint64_t size, uint64_t value) {
    for (uint64_t i = 0; i < size; ++i) image[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}
uint64_t get(const CommonImage& image, uint64_t offset, uint64_t size) {
    uint64_t value = 0;
    for (uint64_t i = 0; i < size; ++i) value |= uint64_t{image[offset + i]} << (8 * i);
    return value;
}

uint32_t class_code(DeviceType type) {
    switch (type) {
        case DeviceType::Net: return 0x020000;      // network controller, Ethernet
        case DeviceType::Block: return 0x018000;    // mass storage, other
        case DeviceType::Console: return 0x078000;  // simple communication, other
        case DeviceType::Entropy: return 0x00FF00;  // unclassified
        case DeviceType::Gpu: return 0x038000;      // display controller, other
        case DeviceType::Input: return 0x098000;    // input device, other
        case DeviceType::Balloon: return 0x00FF00;  // unclassified
    }
    return 0x00FF00;
}

/// A virtio_pci_cap (§4.1.4), with `extra` bytes after it (notify multiplier, pci_cfg_data).
std::vector<uint8_t> virtio_capability(uint8_t type, uint32_t offset, uint32_t length, uint32_t extra_value,
                                       size_t extra_size) {
    std::vector<uint8_t> bytes(16 + extra_size, 0);
    bytes[0] = k_cap_vendor_id;
    bytes[2] = static_cast<uint8_t>(bytes.size());  // cap_len
    bytes[3] = type;
    bytes[4] = 0;  // BAR 0
    for (unsigned i = 0; i < 4; ++i) {
        bytes[8 + i] = static_cast<uint8_t>(offset >> (8 * i));
        bytes[12 + i] = static_cast<uint8_t>(length >> (8 * i));
        if (i < extra_size) bytes[16 + i] = static_cast<uint8_t>(extra_value >> (8 * i));
    }
    return bytes;
}

}  // namespace

uint16_t VirtioPciTransport::vector_count(const VirtioDevice& device) {
    return static_cast<uint16_t>(std::min<size_t>(device.queue_max_sizes().size(), k_max_queues) + 1);
}

Result<std::shared_ptr<VirtioPciTransport>> VirtioPciTransport::create(
    std::shared_ptr<VirtioDevice> device, const GuestMemory& memory, uint64_t bar_address,
    std::unique_ptr<MsiVectors> vectors) {
    auto sizes = device->queue_max_sizes();
    if (sizes.empty() || sizes.size() > k_max_queues)
        return fail(fmt::format("virtio device has {} queues; 1 to {} are supported", sizes.size(), k_max_queues));
    if (device->config_size() > k_device_config_max) return fail("virtio device config space is too large");
    std::vector<std::unique_ptr<QueueState>> queues;
    for (uint16_t max : sizes) {
        if (max == 0 || max > k_max_queue_size || (max & (max - 1)))
            return fail(fmt::format("virtio queue size {} is not a power of two up to 32768", max));
        queues.push_back(std::make_unique<QueueState>(max, TRY(EventFd::create(EFD_NONBLOCK))));
    }
    std::shared_ptr<VirtioPciTransport> transport(new VirtioPciTransport(
        std::move(device), memory, bar_address, std::move(vectors), std::move(queues)));
    TRY_VOID(transport->build_config_space());
    return transport;
}

VirtioPciTransport::VirtioPciTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
                                       uint64_t bar_address, std::unique_ptr<MsiVectors> vectors,
                                       std::vector<std::unique_ptr<QueueState>> queues)
    : m_device(std::move(device)),
      m_memory(memory),
      m_bar_address(bar_address),
      m_vectors(std::move(vectors)),
      m_msix(static_cast<uint16_t>(queues.size() + 1), *m_vectors),
      m_config(PciIds{.vendor = k_vendor,
                      .device = static_cast<uint16_t>(0x1040 + static_cast<uint32_t>(m_device->device_type())),
                      .class_code = class_code(m_device->device_type()),
                      .revision = 1,  // §4.1.2.1: non-transitional devices SHOULD have revision 1
                      .subsystem_vendor = k_vendor,
                      .subsystem = static_cast<uint16_t>(m_device->device_type())}),
      m_queues(std::move(queues)) {}

VirtioPciTransport::~VirtioPciTransport() {
    std::lock_guard lock(m_mutex);
    if (m_active) m_device->reset();
}

Result<void> VirtioPciTransport::build_config_space() {
    TRY_VOID(m_config.set_bar(0, m_bar_address, k_bar_size, PciBarKind::Memory64));
    auto add = [&](const std::vector<uint8_t>& bytes, std::span<const uint8_t> mask = {}) {
        return m_config.add_capability(bytes, mask);
    };
    TRY(add(virtio_capability(k_cap_common, k_common_offset, k_common_size, 0, 0)));
    TRY(add(virtio_capability(k_cap_isr, k_isr_offset, 1, 0, 0)));
    TRY(add(virtio_capability(k_cap_notify, k_notify_offset, k_notify_multiplier * queue_count(),
                              k_notify_multiplier, 4)));
    if (m_device->config_size() > 0)
        TRY(add(virtio_capability(k_cap_device, k_device_config_offset, m_device->config_size(), 0, 0)));
    // §4.1.4.9: bar, offset, length and pci_cfg_data are writable by the driver.
    auto pci_cfg = virtio_capability(k_cap_pci_cfg, 0, 0, 0, 4);
    std::vector<uint8_t> pci_cfg_mask(pci_cfg.size(), 0);
    pci_cfg_mask[4] = 0xFF;
    std::fill(pci_cfg_mask.begin() + 8, pci_cfg_mask.end(), 0xFF);
    m_pci_cfg_capability = TRY(add(pci_cfg, pci_cfg_mask));
    auto msix = m_msix.capability(0, k_msix_table_offset, k_msix_pba_offset);
    auto msix_mask = MsixTable::capability_write_mask();
    m_msix_capability = TRY(m_config.add_capability(msix, msix_mask));
    return {};
}

uint64_t VirtioPciTransport::offered_features() const {
    return m_device->device_features() | k_f_version_1 | k_f_ring_indirect_desc | k_f_ring_event_idx;
}

TransportCounters VirtioPciTransport::counters() const {
    std::lock_guard lock(m_mutex);
    return m_counters;
}

// ---- configuration space -------------------------------------------------------------------

void VirtioPciTransport::read_config(uint16_t offset, std::span<uint8_t> data) {
    uint16_t window_data = static_cast<uint16_t>(m_pci_cfg_capability + 16);
    if (m_pci_cfg_capability && offset == window_data) {
        // VIRTIO_PCI_CAP_PCI_CFG (§4.1.4.9): a read of pci_cfg_data reads the BAR window.
        uint32_t window_offset = m_config.u32(m_pci_cfg_capability + 8);
        uint32_t length = m_config.u32(m_pci_cfg_capability + 12);
        std::fill(data.begin(), data.end(), 0);
        if (m_config.byte(m_pci_cfg_capability + 4) == 0 && (length == 1 || length == 2 || length == 4) &&
            window_offset <= k_bar_size - length) {
            std::array<uint8_t, 4> bytes{};
            read(window_offset, std::span(bytes).first(length));
            std::memcpy(data.data(), bytes.data(), std::min<size_t>(data.size(), length));
        }
        return;
    }
    m_config.read(offset, data);
}

void VirtioPciTransport::write_config(uint16_t offset, std::span<const uint8_t> data) {
    m_config.write(offset, data);
    uint64_t end = offset + data.size();
    uint16_t control = static_cast<uint16_t>(m_msix_capability + 2);
    if (offset < control + 2 && end > control) m_msix.write_control(m_config.u16(control));
    uint16_t window_data = static_cast<uint16_t>(m_pci_cfg_capability + 16);
    if (m_pci_cfg_capability && offset == window_data) {
        uint32_t window_offset = m_config.u32(m_pci_cfg_capability + 8);
        uint32_t length = m_config.u32(m_pci_cfg_capability + 12);
        if (m_config.byte(m_pci_cfg_capability + 4) == 0 && (length == 1 || length == 2 || length == 4) &&
            length <= data.size() && window_offset <= k_bar_size - length)
            write(window_offset, data.first(length));
    }
    if (PciConfigSpace::is_bar_register(offset) || offset < PciConfigSpace::k_command + 2) check_bar_placement();
}

void VirtioPciTransport::check_bar_placement() {
    if (!(m_config.command() & PciConfigSpace::k_command_memory_space)) return;
    if (m_config.bar_address(0) == m_bar_address || m_bar_warning_logged) return;
    m_bar_warning_logged = true;
    log_warning("virtio-pci: the guest moved BAR 0 to 0x{:x}; it stays at 0x{:x} (BARs are fixed)",
                m_config.bar_address(0), m_bar_address);
}

// ---- BAR 0 ---------------------------------------------------------------------------------

void VirtioPciTransport::read(uint64_t offset, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), 0);
    uint64_t size = data.size();
    if (offset + size <= k_common_size) {
        read_common(offset, data);
    } else if (offset == k_isr_offset) {
        // §4.1.4.5: reading ISR status clears it.
        data[0] = m_isr.exchange(0);
    } else if (offset >= k_device_config_offset && offset - k_device_config_offset + size <= m_device->config_size()) {
        std::lock_guard lock(m_mutex);
        m_device->read_config(offset - k_device_config_offset, data);
    } else if (offset >= k_msix_table_offset && offset - k_msix_table_offset + size <= m_msix.table_size()) {
        m_msix.read_table(offset - k_msix_table_offset, data);
    } else if (offset >= k_msix_pba_offset && offset - k_msix_pba_offset + size <= m_msix.pba_size()) {
        m_msix.read_pba(offset - k_msix_pba_offset, data);
    }
    // Everything else (notify area included) reads as zeros.
}

void VirtioPciTransport::write(uint64_t offset, std::span<const uint8_t> data) {
    uint64_t size = data.size();
    if (offset + size <= k_common_size) {
        write_common(offset, data);
    } else if (offset >= k_device_config_offset && offset - k_device_config_offset + size <= m_device->config_size()) {
        std::lock_guard lock(m_mutex);
        m_device->write_config(offset - k_device_config_offset, data);
    } else if (offset >= k_notify_offset && offset < k_notify_offset + uint64_t{k_notify_multiplier} * queue_count()) {
        // Normally caught by the ioeventfd; this is the fallback.
        m_queues[(offset - k_notify_offset) / k_notify_multiplier]->notify.signal();
    } else if (offset >= k_msix_table_offset && offset - k_msix_table_offset + size <= m_msix.table_size()) {
        m_msix.write_table(offset - k_msix_table_offset, data);
    }
}

VirtioPciTransport::QueueState* VirtioPciTransport::selected_queue() const {
    return m_queue_select < m_queues.size() ? m_queues[m_queue_select].get() : nullptr;
}

void VirtioPciTransport::read_common(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_mutex);
    CommonImage image{};
    uint64_t features = m_device_feature_select < 2 ? offered_features() >> (32 * m_device_feature_select) : 0;
    put(image, k_device_feature_select, 4, m_device_feature_select);
    put(image, k_device_feature, 4, static_cast<uint32_t>(features));
    put(image, k_driver_feature_select, 4, m_driver_feature_select);
    uint64_t driver = m_driver_feature_select < 2 ? m_driver_features >> (32 * m_driver_feature_select) : 0;
    put(image, k_driver_feature, 4, static_cast<uint32_t>(driver));
    put(image, k_config_msix_vector, 2, m_config_vector.load());
    put(image, k_num_queues, 2, queue_count());
    put(image, k_device_status, 1, m_status.load());
    put(image, k_config_generation, 1, m_config_generation);
    put(image, k_queue_select, 2, m_queue_select);
    if (QueueState* queue = selected_queue()) {
        put(image, k_queue_size, 2, queue->size);
        put(image, k_queue_msix_vector, 2, queue->vector.load());
        put(image, k_queue_enable, 2, queue->enabled ? 1 : 0);
        put(image, k_queue_notify_off, 2, m_queue_select);
        put(image, k_queue_desc, 8, queue->descriptor_table);
        put(image, k_queue_driver, 8, queue->driver_area);
        put(image, k_queue_device, 8, queue->device_area);
    }
    std::memcpy(data.data(), image.data() + offset, data.size());
}

void VirtioPciTransport::write_common(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_mutex);
    // Overlay the written bytes on the current image, then apply every field they touched:
    // one path for 8-, 16-, 32- and 64-bit accesses and for 64-bit fields written in halves.
    CommonImage image{};
    put(image, k_device_feature_select, 4, m_device_feature_select);
    put(image, k_driver_feature_select, 4, m_driver_feature_select);
    uint64_t driver = m_driver_feature_select < 2 ? m_driver_features >> (32 * m_driver_feature_select) : 0;
    put(image, k_driver_feature, 4, static_cast<uint32_t>(driver));
    put(image, k_config_msix_vector, 2, m_config_vector.load());
    put(image, k_device_status, 1, m_status.load());
    put(image, k_queue_select, 2, m_queue_select);
    QueueState* queue = selected_queue();
    if (queue) {
        put(image, k_queue_size, 2, queue->size);
        put(image, k_queue_msix_vector, 2, queue->vector.load());
        put(image, k_queue_desc, 8, queue->descriptor_table);
        put(image, k_queue_driver, 8, queue->driver_area);
        put(image, k_queue_device, 8, queue->device_area);
    }
    std::memcpy(image.data() + offset, data.data(), data.size());

    uint8_t status = m_status.load();
    bool driver_ok = status & k_status_driver_ok;
    bool queue_writable = queue && !queue->enabled && !driver_ok;
    auto valid_vector = [&](uint64_t vector) {
        // §4.1.5.1.2.1: a vector the device cannot use reads back as NO_VECTOR.
        return vector < m_msix.vector_count() ? static_cast<uint16_t>(vector) : k_no_vector;
    };
    for (const Field& field : k_fields) {
        if (offset >= field.offset + field.size || offset + data.size() <= field.offset) continue;
        uint64_t value = get(image, field.offset, field.size);
        switch (field.offset) {
            case k_device_feature_select: m_device_feature_select = static_cast<uint32_t>(value); break;
            case k_driver_feature_select: m_driver_feature_select = static_cast<uint32_t>(value); break;
            case k_driver_feature:
                // §3.1.1: features are fixed once FEATURES_OK is set.
                if (!(status & k_status_features_ok) && m_driver_feature_select < 2) {
                    unsigned shift = 32 * m_driver_feature_select;
                    m_driver_features = (m_driver_features & ~(0xFFFFFFFFull << shift)) | (value << shift);
                }
                break;
            case k_config_msix_vector: m_config_vector.store(valid_vector(value)); break;
            case k_device_status: write_status(static_cast<uint8_t>(value)); break;
            case k_queue_select: m_queue_select = static_cast<uint16_t>(value); break;
            case k_queue_size:
                if (queue_writable) queue->size = static_cast<uint16_t>(value);  // checked at DRIVER_OK
                break;
            case k_queue_msix_vector:
                if (queue) queue->vector.store(valid_vector(value));
                break;
            case k_queue_enable:
                // §4.1.4.3.2: the driver MUST NOT write 0; only 1 means anything.
                if (queue_writable && value == 1) queue->enabled = true;
                break;
            case k_queue_desc:
                if (queue_writable) queue->descriptor_table = value;
                break;
            case k_queue_driver:
                if (queue_writable) queue->driver_area = value;
                break;
            case k_queue_device:
                if (queue_writable) queue->device_area = value;
                break;
            default: break;  // read-only fields
        }
    }
}

void VirtioPciTransport::write_status(uint8_t value) {
    if (value == 0) {
        reset_locked();
        return;
    }
    uint8_t current = m_status.load();
    value &= static_cast<uint8_t>(~k_status_needs_reset);  // set by the device only
    uint8_t kept = current & k_status_needs_reset;
    uint8_t driver_bits = current & static_cast<uint8_t>(~k_status_needs_reset);
    if ((driver_bits & ~value) != 0) {
        // §2.1.1: the driver only adds bits; clearing any needs a reset. Ignore the write.
        ++m_counters.bad_status_writes;
        return;
    }
    uint8_t added = value & static_cast<uint8_t>(~driver_bits);
    if (added & k_status_features_ok) {
        uint64_t offered = offered_features();
        bool ok = (m_driver_features & ~offered) == 0 && (m_driver_features & k_f_version_1) &&
                  (value & k_status_acknowledge) && (value & k_status_driver);
        if (!ok) {
            // §3.1.1 step 6: the driver re-reads status; FEATURES_OK not set means "refused".
            value &= static_cast<uint8_t>(~k_status_features_ok);
            ++m_counters.features_refused;
            log_debug("virtio-pci: refused features 0x{:x} (offered 0x{:x})", m_driver_features, offered);
        }
    }
    if ((added & k_status_driver_ok) && !(value & k_status_features_ok)) {
        value &= static_cast<uint8_t>(~k_status_driver_ok);
        ++m_counters.bad_status_writes;
        added &= static_cast<uint8_t>(~k_status_driver_ok);
    }
    m_status.store(value | kept);
    if ((added & k_status_driver_ok) && !(value & k_status_failed)) activate_locked();
}

void VirtioPciTransport::activate_locked() {
    QueueFeatures features{.indirect_descriptors = (m_driver_features & k_f_ring_indirect_desc) != 0,
                           .event_index = (m_driver_features & k_f_ring_event_idx) != 0};
    std::vector<std::optional<ActiveQueue>> queues(m_queues.size());
    auto failed = [&](const std::string& why) {
        ++m_counters.activation_failures;
        log_warning("virtio-pci device {}: cannot start: {}", static_cast<uint32_t>(m_device->device_type()), why);
        set_needs_reset();
    };
    for (size_t i = 0; i < m_queues.size(); ++i) {
        QueueState& state = *m_queues[i];
        if (!state.enabled) continue;
        if (state.size > state.max_size)
            return failed(fmt::format("queue {} size {} is above its maximum {}", i, state.size, state.max_size));
        auto queue = Virtqueue::create(m_memory,
                                       QueueLayout{state.size, state.descriptor_table, state.driver_area,
                                                   state.device_area},
                                       features);
        if (!queue) return failed(fmt::format("queue {}: {}", i, queue.error().message()));
        queues[i].emplace(ActiveQueue{std::move(*queue), state.notify.fd()});
    }
    auto result = m_device->activate(ActivateContext{m_memory, m_driver_features, std::move(queues), *this});
    if (!result) return failed(result.error().describe());
    m_active = true;
}

void VirtioPciTransport::reset_locked() {
    // §2.4: after the driver writes 0 the device stops using the queues and forgets the
    // negotiation; the driver waits for status to read 0 again, which it does on return.
    if (m_active) m_device->reset();
    m_active = false;
    for (auto& queue : m_queues) {
        queue->size = queue->max_size;
        queue->enabled = false;
        queue->descriptor_table = queue->driver_area = queue->device_area = 0;
        queue->vector.store(k_no_vector);
        queue->notify.consume();
    }
    m_device_feature_select = m_driver_feature_select = 0;
    m_driver_features = 0;
    m_queue_select = 0;
    m_config_vector.store(k_no_vector);
    m_isr.store(0);
    m_status.store(0);
    ++m_counters.resets;
}

// ---- snapshots ----------------------------------------------------------------------------

void VirtioPciTransport::quiesce() {
    std::lock_guard lock(m_mutex);
    if (m_quiesced) return;
    m_quiesced = true;
    m_resume_active = m_active;
    if (m_active) m_parked = m_device->quiesce();
    m_active = false;
}

Result<VirtioPciState> VirtioPciTransport::save() const {
    std::lock_guard lock(m_mutex);
    if (m_active) return fail(ErrorKind::Busy, "virtio-pci: the device must be quiesced before it is saved");
    VirtioPciState state;
    state.config = m_config.save();  // the PciConfigIo lock is not needed: the vCPUs are paused
    state.msix = m_msix.save();
    state.device_feature_select = m_device_feature_select;
    state.driver_feature_select = m_driver_feature_select;
    state.driver_features = m_driver_features;
    state.queue_select = m_queue_select;
    state.status = m_status.load();
    state.isr = m_isr.load();
    state.config_generation = m_config_generation;
    state.config_vector = m_config_vector.load();
    state.active = m_quiesced && m_resume_active;
    for (size_t i = 0; i < m_queues.size(); ++i) {
        const QueueState& queue = *m_queues[i];
        VirtioQueueState saved;
        saved.size = queue.size;
        saved.enabled = queue.enabled;
        saved.descriptor_table = queue.descriptor_table;
        saved.driver_area = queue.driver_area;
        saved.device_area = queue.device_area;
        saved.vector = queue.vector.load();
        if (state.active && i < m_parked.size() && m_parked[i]) {
            saved.active = true;
            saved.position = m_parked[i]->queue.position();
            saved.rejected_reported = m_parked[i]->rejected_reported;
            saved.broken_reported = m_parked[i]->broken_reported;
        }
        state.queues.push_back(saved);
    }
    snapshot::StateWriter writer;
    m_device->save_state(writer);
    state.device_state = writer.take();
    return state;
}

Result<void> VirtioPciTransport::restore(const VirtioPciState& state) {
    std::lock_guard lock(m_mutex);
    auto refuse = [&](const std::string& why) {
        return fail(ErrorKind::Invalid, fmt::format("virtio-pci device {}: {}",
                                                    static_cast<uint32_t>(m_device->device_type()), why));
    };
    if (m_active || m_quiesced) return refuse("state can only be restored into a new transport");
    if (state.queues.size() != m_queues.size())
        return refuse(fmt::format("the snapshot has {} queues, this device {}", state.queues.size(), m_queues.size()));
    if (state.msix.entries.size() != m_msix.vector_count())
        return refuse(fmt::format("the snapshot has {} MSI-X vectors, this device {}", state.msix.entries.size(),
                                  m_msix.vector_count()));
    // The identity first (vendor, device, class: read-only bytes), so a snapshot of another
    // device is named as such.
    TRY_VOID(m_config.restore(state.config));
    auto vector_ok = [&](uint16_t vector) { return vector == k_no_vector || vector < m_msix.vector_count(); };
    if (!vector_ok(state.config_vector)) return refuse("configuration vector out of range");
    bool driver_ok = (state.status & k_status_driver_ok) != 0;
    if (state.active && (!driver_ok || (state.driver_features & ~offered_features()) != 0))
        return refuse("an active device without DRIVER_OK or with features this device does not offer");
    QueueFeatures features{.indirect_descriptors = (state.driver_features & k_f_ring_indirect_desc) != 0,
                           .event_index = (state.driver_features & k_f_ring_event_idx) != 0};
    std::vector<std::optional<ActiveQueue>> parked(m_queues.size());
    for (size_t i = 0; i < m_queues.size(); ++i) {
        const VirtioQueueState& queue = state.queues[i];
        if (!vector_ok(queue.vector)) return refuse(fmt::format("queue {}: MSI-X vector out of range", i));
        if (queue.size > m_queues[i]->max_size)
            return refuse(fmt::format("queue {}: size {} above its maximum {}", i, queue.size, m_queues[i]->max_size));
        if (!queue.active) continue;
        if (!state.active || !queue.enabled) return refuse(fmt::format("queue {}: active but not enabled", i));
        // The rings are checked against this VM's memory as at DRIVER_OK.
        auto ring = Virtqueue::create(m_memory,
                                      QueueLayout{queue.size, queue.descriptor_table, queue.driver_area,
                                                  queue.device_area},
                                      features);
        if (!ring) return refuse(fmt::format("queue {}: {}", i, ring.error().message()));
        ring->set_position(queue.position);
        parked[i].emplace(ActiveQueue{std::move(*ring), m_queues[i]->notify.fd(), queue.rejected_reported,
                                      queue.broken_reported});
    }
    snapshot::StateReader reader(state.device_state, "virtio device state");
    TRY_VOID(m_device->restore_state(reader));
    TRY_VOID(reader.finish());
    TRY_VOID(m_msix.restore(state.msix));
    m_device_feature_select = state.device_feature_select;
    m_driver_feature_select = state.driver_feature_select;
    m_driver_features = state.driver_features;
    m_queue_select = state.queue_select;
    m_status.store(state.status);
    m_isr.store(state.isr);
    m_config_generation = state.config_generation;
    m_config_vector.store(state.config_vector);
    for (size_t i = 0; i < m_queues.size(); ++i) {
        QueueState& queue = *m_queues[i];
        const VirtioQueueState& saved = state.queues[i];
        queue.size = saved.size;
        queue.enabled = saved.enabled;
        queue.descriptor_table = saved.descriptor_table;
        queue.driver_area = saved.driver_area;
        queue.device_area = saved.device_area;
        queue.vector.store(saved.vector);
    }
    m_parked = std::move(parked);
    m_quiesced = true;
    m_resume_active = state.active;
    return {};
}

Result<void> VirtioPciTransport::resume() {
    std::lock_guard lock(m_mutex);
    if (!m_quiesced) return {};
    m_quiesced = false;
    if (!m_resume_active) return {};
    auto queues = std::move(m_parked);
    m_parked.clear();
    auto result = m_device->activate(ActivateContext{m_memory, m_driver_features, std::move(queues), *this});
    if (!result) {
        ++m_counters.activation_failures;
        set_needs_reset();
        return fail(result.error().with_context("virtio-pci: resuming the device"));
    }
    m_active = true;
    return {};
}

// ---- VirtioInterrupt ----------------------------------------------------------------------

void VirtioPciTransport::signal_queue(uint16_t index) {
    if (index >= m_queues.size()) return;
    m_isr.fetch_or(1);
    uint16_t vector = m_queues[index]->vector.load();
    if (vector != k_no_vector) m_msix.notify(vector);
}

void VirtioPciTransport::signal_config_change() {
    m_isr.fetch_or(2);
    uint16_t vector = m_config_vector.load();
    if (vector != k_no_vector) m_msix.notify(vector);
}

void VirtioPciTransport::set_needs_reset() {
    m_status.fetch_or(k_status_needs_reset);
    signal_config_change();
}

}  // namespace corral::vmm::virtio
