#include "vmm/boot_files.h"

#include <fmt/format.h>

#include "vmm/boot/cmdline.h"
#include "vmm/boot/file.h"
#include "vmm/devices/virtio/block/open_disk.h"

namespace corral::vmm {
namespace {

// Bounds on what is read into memory: larger files are certainly not what the user meant.
constexpr uint64_t k_max_kernel_size = 512ull << 20;
constexpr uint64_t k_max_initrd_size = 4ull << 30;

}  // namespace

Result<BootFiles> load_boot_files(const VmConfig& config) {
    BootFiles files;
    files.kernel_bytes = TRY_CONTEXT(read_file(config.kernel_path, k_max_kernel_size, "kernel"), "--kernel");
    files.kernel = TRY_CONTEXT(parse_kernel_image(files.kernel_bytes),
                               fmt::format("--kernel {}", config.kernel_path));
    if (config.initrd_path)
        files.initrd_bytes = TRY_CONTEXT(read_file(*config.initrd_path, k_max_initrd_size, "initrd"), "--initrd");
    TRY_CONTEXT(validate_cmdline(config.cmdline, files.kernel.cmdline_size), "--cmdline");
    // A missing or unreadable disk image is the user's mistake too: open each once to check.
    for (const DiskConfig& disk : config.disks) TRY_VOID(virtio::open_disk(disk));
    return files;
}

}  // namespace corral::vmm
