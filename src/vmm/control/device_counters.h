#pragma once

#include <nlohmann/json_fwd.hpp>

namespace corral::vmm {

struct PciDevices;

/// The counters the virtio devices keep, as the control socket's "counters" answer lists them:
/// one object per device in attach order, named by type and index ("block0", "net0", "rng0"),
/// with requests, bytes, errors and rejected (malformed chains), plus the block devices'
/// bytes_read/bytes_written/rejected_requests, read_ops/write_ops and read_time_ns/write_time_ns
/// (time the image took to serve them), and the NICs' tx/rx frames and bytes.
/// `pci` may be null (no PCI devices): an empty array.
nlohmann::json device_counters_json(const PciDevices* pci);

}  // namespace corral::vmm
