#pragma once

#include <cstdint>
#include <vector>

#include "base/result.h"

namespace corral::vmm {
class GuestMemory;
}

namespace corral::vmm::x86 {

/// The most vCPUs a VM can have: xAPIC ids are 8 bits, 0xFF is the broadcast id, and the I/O APIC
/// takes the id after the last CPU (MP table and MADT alike).
constexpr uint32_t k_max_cpu_count = 254;

/// Fails with a message naming --cpus unless 1 <= cpu_count <= k_max_cpu_count.
Result<void> check_cpu_count(uint32_t cpu_count);

/// Builds an Intel MultiProcessor Specification 1.4 table for `cpu_count` CPUs: the 16-byte
/// floating pointer structure followed by the configuration table, laid out to be copied to
/// k_mptable_address (the physical pointer inside is computed from that address).
Result<std::vector<uint8_t>> build_mptable(uint32_t cpu_count);

/// Builds the MP table and copies it to k_mptable_address.
Result<void> write_mptable(const GuestMemory& memory, uint32_t cpu_count);

}  // namespace corral::vmm::x86
