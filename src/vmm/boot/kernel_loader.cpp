#include "vmm/boot/kernel_loader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "vmm/arch/x86_64/layout.h"
#include "vmm/boot/bytes.h"

namespace corral::vmm {

namespace {

using boot_detail::format_size;
using boot_detail::range_fits;

// boot.rst, "64-bit Boot Protocol": the 64-bit entry is the protected-mode kernel's load
// address plus 0x200.
constexpr uint64_t k_bzimage_entry_offset = 0x200;

/// "the VM has 512 MiB of memory", or where low RAM stops when memory continues above 4 GiB
/// (a kernel cannot straddle the PCI hole).
std::string memory_description(const GuestMemory& memory) {
    const auto& regions = memory.regions();
    if (regions.size() > 1)
        return fmt::format("the VM's memory below 4 GiB ends at {:#x}, where the PCI hole starts",
                           regions.front().end());
    return fmt::format("the VM has {} of memory", format_size(memory.ram_size()));
}

Result<LoadedKernel> load_bzimage(const GuestMemory& memory, const BzImageInfo& info,
                                  std::span<const uint8_t> file) {
    if (!range_fits(info.payload_offset, info.payload_size, file.size()) || info.payload_size == 0)
        return fail("kernel file does not match its parsed image (was it changed while loading?)");
    const uint64_t load = x86::k_kernel_load_address;
    const uint64_t end = bzimage_memory_end(info, load);  // > load: payload_size > 0
    // All of [load, end) must be ordinary RAM: host_pointer() checks it lies in one region,
    // which also keeps it below the PCI hole.
    if (!memory.host_pointer(load, end - load))
        return fail(fmt::format("kernel needs {} at {:#x} (up to {:#x}) but {}",
                                format_size(end - load), load, end, memory_description(memory)));
    TRY_VOID(memory.write(load, file.subspan(info.payload_offset, info.payload_size)));
    return LoadedKernel{load + k_bzimage_entry_offset, load, end, info.setup_header};
}

Result<LoadedKernel> load_elf(const GuestMemory& memory, const KernelImage& image,
                              std::span<const uint8_t> file) {
    if (image.segments.empty())
        return fail("ELF kernel has no loadable (PT_LOAD) segments");
    LoadedKernel loaded;
    loaded.entry = image.elf_entry;
    loaded.load_address = UINT64_MAX;
    // Check every segment before writing any, so a failure leaves guest memory untouched.
    for (const auto& segment : image.segments) {
        if (!range_fits(segment.file_offset, segment.file_size, file.size()) ||
            segment.file_size > segment.memory_size)
            return fail(
                "kernel file does not match its parsed image (was it changed while loading?)");
        // Below 1 MiB are the monitor's boot structures (layout.h): a segment there would be
        // overwritten by them, or overwrite them.
        if (segment.guest_address < x86::k_high_ram_start)
            return fail(fmt::format(
                "ELF segment {} is at {:#x}, below 1 MiB where the monitor keeps its boot "
                "structures; link the kernel at 1 MiB or above",
                segment.index, segment.guest_address));
        if (!memory.host_pointer(segment.guest_address, segment.memory_size))
            return fail(fmt::format(
                "kernel segment {} needs {} at {:#x} (up to {:#x}) but {}", segment.index,
                format_size(segment.memory_size), segment.guest_address,
                segment.guest_address + segment.memory_size, memory_description(memory)));
        loaded.load_address = std::min(loaded.load_address, segment.guest_address);
        loaded.end = std::max(loaded.end, segment.guest_address + segment.memory_size);
    }
    for (const auto& segment : image.segments) {
        // Bounds checked above: [guest_address, + memory_size) is one RAM region.
        uint8_t* host = memory.host_pointer(segment.guest_address, segment.memory_size);
        std::memcpy(host, file.data() + segment.file_offset, segment.file_size);
        std::memset(host + segment.file_size, 0, segment.memory_size - segment.file_size);
    }
    return loaded;
}

}  // namespace

uint64_t bzimage_memory_end(const BzImageInfo& info, uint64_t load_address) {
    // The protected-mode code decompresses the kernel in a buffer init_size bytes long
    // (boot.rst, init_size). arch/x86/boot/compressed/head_64.S places that buffer at the load
    // address rounded up to kernel_alignment when relocatable, but never below pref_address
    // (LOAD_PHYSICAL_ADDR); a kernel that is not relocatable uses pref_address. Debian's kernel
    // loaded at 1 MiB thus runs from 16 MiB: its footprint ends at 16 MiB + init_size, well past
    // load_address + init_size.
    uint64_t base = load_address;
    if (info.relocatable) {
        const uint64_t alignment = std::max<uint64_t>(info.kernel_alignment, 1);
        // alignment is a power of two below 2^32 (checked by the parser) and load_address is
        // the monitor's own (1 MiB): no overflow here.
        base = (load_address + alignment - 1) & ~(alignment - 1);
        base = std::max(base, info.pref_address);
    } else if (info.pref_address != 0) {
        base = info.pref_address;
    }
    // pref_address comes from the file: saturate rather than wrap, so a bogus value fails the
    // memory check instead of looking small.
    return std::max(boot_detail::saturating_add(load_address, info.payload_size),
                    boot_detail::saturating_add(base, info.init_size));
}

Result<LoadedKernel> load_kernel(const GuestMemory& memory, const KernelImage& image,
                                 std::span<const uint8_t> file) {
    if (image.format == KernelFormat::BzImage)
        return load_bzimage(memory, image.bzimage, file);
    return load_elf(memory, image, file);
}

}  // namespace corral::vmm
