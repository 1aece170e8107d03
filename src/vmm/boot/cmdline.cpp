#include "vmm/boot/cmdline.h"

#include <fmt/format.h>

#include <algorithm>
#include <vector>

#include "vmm/arch/x86_64/layout.h"

namespace corral::vmm {

Result<void> validate_cmdline(std::string_view cmdline, uint32_t max_length) {
    // The kernel's limit, but never more than the space reserved at k_cmdline_address.
    const uint64_t limit = std::min<uint64_t>(max_length, x86::k_cmdline_max_size - 1);
    if (cmdline.size() > limit)
        return fail(fmt::format(
            "kernel command line is {} bytes; this kernel accepts at most {} (cmdline_size)",
            cmdline.size(), limit));
    // The kernel reads up to the first NUL: anything after one would be silently dropped.
    if (auto nul = cmdline.find('\0'); nul != std::string_view::npos)
        return fail(fmt::format("kernel command line contains a NUL byte at offset {}", nul));
    return {};
}

Result<CmdlineLocation> write_cmdline(const GuestMemory& memory, std::string_view cmdline,
                                      uint32_t max_length) {
    TRY_VOID(validate_cmdline(cmdline, max_length));
    // Bounded by k_cmdline_max_size through validate_cmdline().
    std::vector<uint8_t> bytes(cmdline.begin(), cmdline.end());
    bytes.push_back(0);
    if (auto written = memory.write(x86::k_cmdline_address, bytes); !written)
        return fail(written.error().with_context("writing the kernel command line"));
    return CmdlineLocation{x86::k_cmdline_address, static_cast<uint32_t>(cmdline.size())};
}

}  // namespace corral::vmm
