#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/result.h"
#include "vmm/boot/kernel_image.h"
#include "vmm/config/vm_config.h"

namespace corral::vmm {

/// The user-supplied files a VM boots from, read and checked before any KVM object exists, so
/// that a wrong path or a file that is not a kernel is reported as the user's mistake.
struct BootFiles {
    std::vector<uint8_t> kernel_bytes;
    KernelImage kernel;
    std::optional<std::vector<uint8_t>> initrd_bytes;
};

/// Reads and parses --kernel and --initrd and checks --cmdline against the kernel's limit.
Result<BootFiles> load_boot_files(const VmConfig& config);

}  // namespace corral::vmm
