#pragma once

#include <asm/bootparam.h>

#include <cstdint>
#include <optional>
#include <span>

#include "base/result.h"
#include "vmm/boot/cmdline.h"
#include "vmm/boot/initrd.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm {

/// Builds the "zero page" for the 64-bit boot protocol (boot.rst, "64-bit Boot Protocol";
/// zero-page.rst). `setup_header` is LoadedKernel::setup_header: a bzImage's header bytes from
/// 0x1F1, copied in and then updated; when empty (ELF kernels) a minimal 2.12 header is made.
/// Fails when the e820 map has more entries than the zero page holds.
Result<boot_params> build_boot_params(std::span<const uint8_t> setup_header,
                                      std::span<const boot_e820_entry> e820,
                                      CmdlineLocation cmdline,
                                      std::optional<InitrdLocation> initrd);

/// Writes `params` at x86::k_boot_params_address, where the vCPU's RSI will point.
Result<void> write_boot_params(const GuestMemory& memory, const boot_params& params);

}  // namespace corral::vmm
