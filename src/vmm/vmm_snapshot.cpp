// Vmm::snapshot() and Vmm::restore_state(): the VM's side of snapshot files (the format is in
// snapshot/snapshot_file.h).

#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "storage/qcow2/qcow2_bitmaps.h"
#include "vmm/control/screenshot.h"
#include "vmm/devices/legacy/acpi_power.h"
#include "vmm/devices/legacy/i8042.h"
#include "vmm/devices/legacy/rtc.h"
#include "vmm/devices/legacy/serial.h"
#include "vmm/devices/pci/pci_bus.h"
#include "vmm/devices/virtio/block/block_device.h"
#include "vmm/devices/virtio/pci_transport.h"
#include "vmm/kvm/vcpu_state.h"
#include "vmm/pci_setup.h"
#include "vmm/snapshot/snapshot_file.h"
#include "vmm/vmm.h"

namespace corral::vmm {

Result<nlohmann::json> Vmm::snapshot(const std::string& dir, bool resume) {
    // The display devices' resources live on the host and have no saved form yet: a restore
    // would come back with a dead screen, so refuse before anything is touched.
    if (m_config.has_display())
        return fail(ErrorKind::Invalid,
                    "snapshots of VMs with a display are not supported yet (this VM has --display)");
    auto started = std::chrono::steady_clock::now();
    bool was_paused = m_paused;
    if (!was_paused && !pause_vcpus()) {
        resume_vcpus();
        return fail(ErrorKind::Busy, "the vCPUs did not stop within 5 s; the VM keeps running");
    }
    m_paused = true;
    std::vector<std::shared_ptr<virtio::VirtioPciTransport>> transports;
    if (m_pci) transports = m_pci->transports;
    // Whatever happens below, the devices serve again and the vCPUs run as asked.
    auto restart = [&] {
        for (auto& transport : transports)
            if (auto resumed = transport->resume(); !resumed)
                log_error("after the snapshot: {}", resumed.error().describe());
        if (resume && !was_paused) resume_vcpus();
    };
    auto save = [&]() -> Result<snapshot::MemoryFileStats> {
        // A vCPU parked right after an I/O exit finishes that instruction first (an IN's value
        // lands in its register), so the saved registers are consistent.
        for (auto& vcpu : m_vcpus) TRY_VOID(vcpu->vcpu().complete_pending_io());
        for (auto& transport : transports) transport->quiesce();
        auto state = TRY(capture_state());
        return snapshot::write_snapshot(dir, state, m_memory);
    };
    auto stats = save();
    restart();
    if (!stats) return fail(stats.error().with_context(fmt::format("snapshot to {}", dir)));
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    log_info("snapshot written to {} ({} of {} MiB of memory not zero, {} ms){}", dir, stats->bytes_written >> 20,
             m_memory.ram_size() >> 20, elapsed.count(), m_paused ? "; the VM stays paused" : "");
    return nlohmann::json{{"dir", dir},
                          {"state", m_paused ? "paused" : "running"},
                          {"memory_bytes", m_memory.ram_size()},
                          {"memory_bytes_written", stats->bytes_written},
                          {"duration_ms", elapsed.count()}};
}

namespace {

/// The most bytes of bits one disk_snapshot answer hands back, all disks together: 32 MiB of
/// bits is 43 MiB of base64, within the control socket's 64 MiB answers. At QEMU's default 64
/// KiB granules that is 16 TiB of disks; past it a disk's backup reads in full, saying why.
constexpr uint64_t k_max_handed_bit_bytes = 32u << 20;

/// One disk's entry of the answer's "bitmaps": {"added": NAME, "handed": [{"name", "granularity",
/// "disk_size", "bits": base64 of the bits in qcow2's order}], "notes": [...]}, or {"error": why}
/// when the disk kept its bitmaps (and took no new one).
nlohmann::json rotation_answer(Result<storage::qcow2::BitmapRotation>& rotated, const std::string& name,
                               uint64_t& budget) {
    if (!rotated)  // ENOTSUP: a disk that keeps no bitmaps at all; the sentence says it
        return nlohmann::json{{"error", rotated.error().errno_value() == ENOTSUP ? rotated.error().message()
                                                                                 : rotated.error().describe()}};
    nlohmann::json handed = nlohmann::json::array();
    nlohmann::json notes = rotated->notes;
    for (auto& bitmap : rotated->handed) {
        const uint64_t bytes = bitmap.map.bits.size();
        if (bytes > budget) {
            notes.push_back(
                fmt::format("bitmap '{}' has {} bytes of bits, more than one answer carries ({} left of {})",
                            bitmap.name, bytes, budget, k_max_handed_bit_bytes));
            continue;
        }
        budget -= bytes;
        handed.push_back({{"name", bitmap.name},
                          {"granularity", bitmap.map.granularity},
                          {"disk_size", bitmap.map.disk_size},
                          {"bits", base64_encode(bitmap.map.bits.data(), bitmap.map.bits.size())}});
    }
    return nlohmann::json{{"added", name}, {"handed", std::move(handed)}, {"notes", std::move(notes)}};
}

}  // namespace

Result<nlohmann::json> Vmm::disk_snapshot(const std::string& tag, bool remove,
                                          const std::optional<DiskSnapshotBitmap>& bitmap) {
    auto started = std::chrono::steady_clock::now();
    const bool was_paused = m_paused;
    if (!was_paused && !pause_vcpus()) {
        resume_vcpus();
        return fail(ErrorKind::Busy, "the vCPUs did not stop within 5 s; the VM keeps running");
    }
    std::vector<std::shared_ptr<virtio::VirtioPciTransport>> transports;
    if (m_pci)
        transports = m_pci->transports;
    for (auto& transport : transports)
        transport->quiesce();
    std::vector<virtio::BlockDevice*> blocks, done;
    for (auto& transport : transports)
        if (auto* block = dynamic_cast<virtio::BlockDevice*>(&transport->device()))
            blocks.push_back(block);  // in --disk order (pci_setup.cpp)
    Result<void> outcome;
    for (auto* block : blocks) {
        auto changed = block->internal_snapshot(tag, remove);
        if (!changed) {
            outcome = fail(changed.error().with_context(fmt::format("disk snapshot {}", tag)));
            break;
        }
        if (*changed)
            done.push_back(block);
    }
    // A snapshot on some disks only is not one instant: the ones taken go again.
    if (!outcome && !remove)
        for (auto* block : done)
            if (auto undone = block->internal_snapshot(tag, true); !undone)
                log_error("disk snapshot {}: could not undo it: {}", tag, undone.error().describe());
    // The generation change at the same instant, once every snapshot stands (a failed
    // snapshot must not cost the disks their bitmaps): no write comes between the two.
    std::vector<Result<storage::qcow2::BitmapRotation>> rotations;
    if (outcome && bitmap)
        for (auto* block : blocks)
            rotations.push_back(block->rotate_bitmaps(bitmap->name, bitmap->replaces));
    for (auto& transport : transports)
        if (auto resumed = transport->resume(); !resumed)
            log_error("after the disk snapshot: {}", resumed.error().describe());
    if (!was_paused)
        resume_vcpus();
    TRY_VOID(outcome);
    auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    log_info("disk snapshot {} {} on {} disk(s) ({} ms){}", tag, remove ? "deleted" : "taken", done.size(),
             elapsed.count(), bitmap ? fmt::format(", bitmap {} started", bitmap->name) : std::string());
    nlohmann::json answer{{"tag", tag}, {"disks", done.size()}, {"duration_ms", elapsed.count()}};
    if (bitmap) {
        // Encoded with the guest running again: only the copies of the bits were taken at the instant.
        uint64_t budget = k_max_handed_bit_bytes;
        nlohmann::json disks = nlohmann::json::array();
        for (auto& rotated : rotations) {
            // A raw or read-only disk has none to keep (ENOTSUP): not worth a warning.
            if (!rotated && rotated.error().errno_value() != ENOTSUP)
                log_warning("disk snapshot {}: a disk keeps its bitmaps: {}", tag, rotated.error().describe());
            disks.push_back(rotation_answer(rotated, bitmap->name, budget));
        }
        answer["bitmaps"] = std::move(disks);
    }
    return answer;
}

Result<snapshot::SnapshotState> Vmm::capture_state() const {
    snapshot::SnapshotState state;
    state.config = m_config;
    state.memory_bytes = m_memory.ram_size();
    state.vm = TRY(kvm::save_vm(m_vm));
    auto msrs = TRY(kvm::saveable_msrs(m_system, m_vcpus.front()->vcpu()));
    for (const auto& vcpu : m_vcpus) state.vcpus.push_back(TRY(kvm::save_vcpu(m_system, vcpu->vcpu(), msrs)));
    state.serial = m_serial->save();
    state.i8042 = m_i8042->save();
    state.rtc = m_rtc->save();
    state.acpi = m_acpi->save();
    if (m_pci)
        for (const auto& transport : m_pci->transports) state.virtio.push_back(TRY(transport->save()));
    if (m_pci && m_pci->config_io) state.pci_config_address = m_pci->config_io->config_address();
    return state;
}

Result<void> Vmm::restore_state(const snapshot::SnapshotState& state) {
    size_t virtio_count = m_pci ? m_pci->transports.size() : 0;
    if (state.virtio.size() != virtio_count)
        return fail(ErrorKind::Invalid, fmt::format("the snapshot has {} virtio devices, this VM {}",
                                                    state.virtio.size(), virtio_count));
    if (state.vcpus.size() != m_vcpus.size())
        return fail(ErrorKind::Invalid, "the snapshot's vCPU count does not match the VM's");
    // The interrupt controllers first: devices drive their lines to the restored levels next.
    TRY_CONTEXT(kvm::restore_vm(m_vm, state.vm), "KVM VM state");
    TRY_VOID(m_serial->restore(state.serial));
    TRY_VOID(m_i8042->restore(state.i8042));
    TRY_VOID(m_rtc->restore(state.rtc));
    m_acpi->restore(state.acpi);
    for (size_t i = 0; i < virtio_count; ++i)
        TRY_CONTEXT(m_pci->transports[i]->restore(state.virtio[i]), fmt::format("virtio device {}", i));
    if (m_pci && m_pci->config_io) m_pci->config_io->set_config_address(state.pci_config_address);
    for (size_t i = 0; i < m_vcpus.size(); ++i)
        TRY_VOID(kvm::restore_vcpu(m_system, m_vcpus[i]->vcpu(), state.vcpus[i]));
    if (m_pci)
        for (auto& transport : m_pci->transports) TRY_VOID(transport->resume());
    return {};
}

}  // namespace corral::vmm
