// libFuzzer target for the kernel image parser: a kernel file is user input, and the parser must
// reject anything malformed with an error, never read out of bounds or allocate unboundedly.
// When a file parses, it is also loaded into a small guest memory, which exercises the loader's
// range checks on the parsed (file-controlled) addresses and sizes.
#include <cstddef>
#include <cstdint>
#include <span>

#include "vmm/boot/kernel_image.h"
#include "vmm/boot/kernel_loader.h"
#include "vmm/memory/guest_memory.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace corral::vmm;
    static auto memory = GuestMemory::create(8 * 1024 * 1024);
    std::span<const uint8_t> file(data, size);
    auto image = parse_kernel_image(file);
    if (!image || !memory)
        return 0;
    (void)load_kernel(*memory, *image, file);
    return 0;
}
