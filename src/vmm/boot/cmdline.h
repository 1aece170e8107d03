#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm {

/// Where the command line sits in guest memory, for boot_params' cmd_line_ptr.
struct CmdlineLocation {
    uint64_t address = 0;
    uint32_t length = 0;  ///< bytes, without the terminating NUL
};

/// Checks a kernel command line: no NUL bytes, and at most `max_length` bytes (the kernel's
/// cmdline_size, which excludes the NUL; boot.rst "cmdline_size"), and no longer than the room
/// the memory map gives it.
Result<void> validate_cmdline(std::string_view cmdline, uint32_t max_length);

/// Validates `cmdline`, then writes it NUL-terminated at x86::k_cmdline_address.
Result<CmdlineLocation> write_cmdline(const GuestMemory& memory, std::string_view cmdline,
                                      uint32_t max_length);

}  // namespace corral::vmm
