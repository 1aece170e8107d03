#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "base/event_fd.h"
#include "base/result.h"
#include "vmm/devices/bus_device.h"
#include "vmm/devices/pci/config_space.h"
#include "vmm/devices/pci/msix.h"
#include "vmm/devices/pci/pci_device.h"
#include "vmm/devices/virtio/transport_state.h"
#include "vmm/devices/virtio/virtio_device.h"

namespace corral::vmm::virtio {

/// Device status bits (virtio 1.2 §2.1).
constexpr uint8_t k_status_acknowledge = 1;
constexpr uint8_t k_status_driver = 2;
constexpr uint8_t k_status_driver_ok = 4;
constexpr uint8_t k_status_features_ok = 8;
constexpr uint8_t k_status_needs_reset = 64;
constexpr uint8_t k_status_failed = 128;
/// "No MSI-X vector" (§4.1.5.1.2).
constexpr uint16_t k_no_vector = 0xFFFF;

/// Counters of the transport itself.
struct TransportCounters {
    uint64_t features_refused = 0;  // FEATURES_OK writes refused (bad feature set)
    uint64_t activation_failures = 0;  // DRIVER_OK that found bad rings or a failing device
    uint64_t bad_status_writes = 0;    // status writes that cleared bits without a reset
    uint64_t resets = 0;
};

/// The virtio 1.x modern PCI transport (virtio 1.2 §4.1) around any VirtioDevice: vendor 0x1AF4,
/// device 0x1040 + type, revision 1, subsystem vendor 0x1AF4 and subsystem ID = the device type.
///
/// BAR 0 is a 64-bit memory BAR of k_bar_size bytes placed by the builder, holding every
/// structure: common configuration at 0x0000, ISR status at 0x1000, device configuration at
/// 0x2000, notifications at 0x3000 (queue i at 0x3000 + 4 * i: queue_notify_off = i,
/// notify_off_multiplier = 4), the MSI-X table at 0x4000 and its PBA at 0x5000. Config space
/// carries the vendor capabilities for them (§4.1.4), a VIRTIO_PCI_CAP_PCI_CFG window, and the
/// MSI-X capability (vectors: one per queue plus one for configuration changes).
///
/// Notifications: each queue has an eventfd; the builder registers it as a KVM ioeventfd on the
/// queue's notify address, so the device's event loop wakes without a vCPU exit. A notify write
/// that still reaches the BAR (another size, or no ioeventfd) signals the same eventfd.
///
/// BAR moves: the BAR reads back as the guest wrote it (so sizing works), but MMIO stays at the
/// builder's address; a guest that enables decoding at another address gets a logged warning.
///
/// Thread safety: common/device configuration under one mutex (vCPU threads); the device's
/// worker reaches the transport only through VirtioInterrupt, which uses atomics and the MSI-X
/// table's own lock, so reset() may wait for the worker while this mutex is held.
class VirtioPciTransport final : public PciDevice, public BusDevice, private VirtioInterrupt {
public:
    static constexpr uint64_t k_bar_size = 0x8000;
    static constexpr uint64_t k_common_offset = 0x0000;
    static constexpr uint64_t k_common_size = 0x38;
    static constexpr uint64_t k_isr_offset = 0x1000;
    static constexpr uint64_t k_device_config_offset = 0x2000;
    static constexpr uint64_t k_device_config_max = 0x1000;
    static constexpr uint64_t k_notify_offset = 0x3000;
    static constexpr uint32_t k_notify_multiplier = 4;
    static constexpr uint64_t k_msix_table_offset = 0x4000;
    static constexpr uint64_t k_msix_pba_offset = 0x5000;
    static constexpr uint16_t k_max_queues = 64;
    static constexpr uint16_t k_vendor = 0x1AF4;

    /// MSI-X vectors a transport for `device` needs: one per queue, one for config changes.
    static uint16_t vector_count(const VirtioDevice& device);

    /// A transport for `device` with BAR 0 at `bar_address` (k_bar_size-aligned); `vectors`
    /// delivers its MSI-X messages (vector_count() of them).
    static Result<std::shared_ptr<VirtioPciTransport>> create(std::shared_ptr<VirtioDevice> device,
                                                              const GuestMemory& memory,
                                                              uint64_t bar_address,
                                                              std::unique_ptr<MsiVectors> vectors);
    ~VirtioPciTransport() override;

    // PciDevice: configuration space.
    void read_config(uint16_t offset, std::span<uint8_t> data) override;
    void write_config(uint16_t offset, std::span<const uint8_t> data) override;
    // BusDevice: BAR 0 (offsets within it).
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    uint16_t queue_count() const { return static_cast<uint16_t>(m_queues.size()); }
    /// The eventfd of queue `index`'s notifications and the guest address it listens on.
    int notify_event_fd(uint16_t index) const { return m_queues[index]->notify.fd(); }
    uint64_t notify_address(uint16_t index) const {
        return m_bar_address + k_notify_offset + uint64_t{k_notify_multiplier} * index;
    }
    uint64_t bar_address() const { return m_bar_address; }

    uint8_t status() const { return m_status.load(); }
    TransportCounters counters() const;
    const MsixTable& msix() const { return m_msix; }
    VirtioDevice& device() const { return *m_device; }

    /// Snapshot steps, called with the vCPUs paused. quiesce() stops the device (it completes
    /// what is in flight and hands its queues back here); save() then reads the state; resume()
    /// gives the queues back to the device. Each is a no-op when it does not apply.
    void quiesce();
    /// The transport's, queues' and device's state; needs quiesce() first if the device runs.
    Result<VirtioPciState> save() const;
    /// Takes a saved state into this transport, which must be new (never activated): checks it
    /// against this device (queue count and sizes, vectors, read-only config bytes, rings in
    /// guest memory) and leaves the transport quiesced; resume() starts the device. On an
    /// error the transport must be discarded (the VM is not started).
    Result<void> restore(const VirtioPciState& state);
    /// Restarts a quiesced device with its queues (a failure sets DEVICE_NEEDS_RESET, as a
    /// failed DRIVER_OK does, and is returned).
    Result<void> resume();

private:
    struct QueueState {
        uint16_t max_size;
        uint16_t size;
        bool enabled = false;
        uint64_t descriptor_table = 0;
        uint64_t driver_area = 0;
        uint64_t device_area = 0;
        std::atomic<uint16_t> vector{k_no_vector};
        EventFd notify;
        QueueState(uint16_t max, EventFd fd) : max_size(max), size(max), notify(std::move(fd)) {}
    };

    VirtioPciTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
                       uint64_t bar_address, std::unique_ptr<MsiVectors> vectors,
                       std::vector<std::unique_ptr<QueueState>> queues);
    Result<void> build_config_space();

    uint64_t offered_features() const;
    void read_common(uint64_t offset, std::span<uint8_t> data);
    void write_common(uint64_t offset, std::span<const uint8_t> data);
    void write_status(uint8_t value);
    void activate_locked();
    void reset_locked();
    QueueState* selected_queue() const;
    void check_bar_placement();

    // VirtioInterrupt, for the device's worker.
    void signal_queue(uint16_t index) override;
    void signal_config_change() override;
    void set_needs_reset() override;

    std::shared_ptr<VirtioDevice> m_device;
    const GuestMemory& m_memory;
    const uint64_t m_bar_address;
    std::unique_ptr<MsiVectors> m_vectors;
    MsixTable m_msix;
    PciConfigSpace m_config;  // guarded by the PciConfigIo lock
    uint8_t m_msix_capability = 0;
    uint8_t m_pci_cfg_capability = 0;
    bool m_bar_warning_logged = false;

    mutable std::mutex m_mutex;  // guards everything below except the atomics
    std::vector<std::unique_ptr<QueueState>> m_queues;  // fixed at creation
    uint32_t m_device_feature_select = 0;
    uint32_t m_driver_feature_select = 0;
    uint64_t m_driver_features = 0;
    uint16_t m_queue_select = 0;
    bool m_active = false;
    std::atomic<uint8_t> m_status{0};
    std::atomic<uint8_t> m_isr{0};
    std::atomic<uint16_t> m_config_vector{k_no_vector};
    uint8_t m_config_generation = 0;
    TransportCounters m_counters;
    // Between quiesce() (or restore()) and resume(): whether the device was serving, and the
    // queues it handed back.
    bool m_quiesced = false;
    bool m_resume_active = false;
    std::vector<std::optional<ActiveQueue>> m_parked;
};

}  // namespace corral::vmm::virtio
