#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"
#include "vmm/config/vm_config.h"
#include "vmm/devices/legacy/i8042_state.h"
#include "vmm/devices/legacy/rtc_state.h"
#include "vmm/devices/legacy/serial_state.h"
#include "vmm/devices/virtio/transport_state.h"
#include "vmm/kvm/vcpu_state.h"

namespace corral::vmm {
class GuestMemory;
}

/// The snapshot folder: a state file and a memory file.
///
/// `state`: a 32-byte header (magic "CORRALSS", format version u32, flags u32 = 0, payload length
/// u64, CRC-32C of the payload u32, reserved u32), then the payload: tagged sections (see
/// state_stream.h) in a fixed order: the VM configuration as JSON ("CONF"), the memory layout
/// ("MEMI"), KVM's VM state ("KVMV"), each vCPU ("VCPU", with the CPUID the guest saw), the
/// legacy devices ("SERL", "I842", "RTC_", "ACPI"), then one "VPCI" per virtio device in
/// attachment order. Everything is checked (header, length, CRC, every section) before any of it
/// is used.
///
/// `memory`: guest RAM as one file of exactly the RAM size, guest RAM offset = file offset (RAM
/// above the PCI hole follows RAM below it). Only pages that are not zero are written: the rest
/// are holes, so the file takes the space of the memory the guest touched. A restore maps it
/// MAP_PRIVATE: pages are read when the guest first touches them, and the guest's writes never
/// reach the file.
namespace corral::vmm::snapshot {

inline constexpr char k_state_file[] = "state";
inline constexpr char k_memory_file[] = "memory";
inline constexpr uint32_t k_format_version = 1;
inline constexpr size_t k_state_header_size = 32;
/// A state file is small (KiBs); a larger one is refused before it is read.
inline constexpr uint64_t k_max_state_bytes = 64ull << 20;

/// Everything in a state file.
struct SnapshotState {
    VmConfig config;
    uint64_t memory_bytes = 0;
    kvm::VmState vm;
    std::vector<kvm::VcpuState> vcpus;
    SerialState serial;
    I8042State i8042;
    RtcState rtc;
    AcpiSleepState acpi;
    std::vector<virtio::VirtioPciState> virtio;
    uint32_t pci_config_address = 0;  ///< the 0xCF8 latch (section PCIA; absent in older files: 0)
};

/// The state file's bytes (header + payload).
std::vector<uint8_t> encode_state_file(const SnapshotState& state);
/// Checks and decodes a state file's bytes: magic, format version, length, checksum, sections.
Result<SnapshotState> decode_state_file(std::span<const uint8_t> bytes);

/// What write_memory_file() wrote.
struct MemoryFileStats {
    uint64_t pages_written = 0;  // pages that were not zero
    uint64_t bytes_written = 0;
};

/// Creates `path` (which must not exist) holding guest RAM, sparse: only non-zero pages are
/// written. fsyncs it.
Result<MemoryFileStats> write_memory_file(const std::string& path, const GuestMemory& memory);

/// Writes a snapshot folder: creates `dir` if needed (it must not hold a snapshot already),
/// writes the memory file and the state file under temporary names, fsyncs, and renames them:
/// the state file last, so a folder with a state file has a complete snapshot.
Result<MemoryFileStats> write_snapshot(const std::string& dir, const SnapshotState& state,
                                       const GuestMemory& memory);

/// Reads and checks a snapshot folder's state file, and checks that the memory file is there
/// with the right size (a truncated one is refused).
Result<SnapshotState> read_snapshot(const std::string& dir);

/// A human-readable account of a snapshot folder (for --inspect-snapshot): format version,
/// configuration, sizes, and whether the checksum and the memory file are right. Fails only
/// when the folder cannot be read at all; a bad snapshot is described, with the verdict.
struct Inspection {
    std::string text;
    bool valid = false;
};
Inspection inspect_snapshot(const std::string& dir);

}  // namespace corral::vmm::snapshot
