// libFuzzer target for virtio-gpu's 2D commands (gpu::GpuCommands): the input is a sequence of
// commands, each a 2-byte little-endian length and that many bytes, executed in order on one
// device state over 1 MiB of guest RAM (the first 64 KiB of RAM hold the input too, so backing
// entries can point at data the fuzzer wrote). A hostile guest must get an answer for every
// command and never make the device read or write outside guest RAM, its resources or the
// framebuffer (AddressSanitizer), nor exceed its host memory budget.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "display/framebuffer.h"
#include "fuzz_check.h"
#include "vmm/devices/virtio/gpu/gpu_commands.h"
#include "vmm/devices/virtio/gpu/gpu_protocol.h"
#include "vmm/memory/guest_memory.h"

using namespace corral;
using namespace corral::vmm;
using namespace corral::vmm::virtio::gpu;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    constexpr uint64_t k_memory = 1 << 20;
    static GuestMemory memory = GuestMemory::create(k_memory).value();
    uint8_t* ram = memory.host_pointer(0, k_memory);
    std::memset(ram, 0, k_memory);
    std::memcpy(ram, data, std::min<size_t>(size, 64 * 1024));
    auto framebuffer = std::make_shared<display::Framebuffer>(640, 480);
    GpuCommands commands(memory, framebuffer);
    uint8_t response[GpuCommands::k_max_response_bytes];
    size_t at = 0;
    while (at + 2 <= size) {
        size_t length = data[at] | size_t{data[at + 1]} << 8;
        at += 2;
        length = std::min(length, size - at);
        size_t answer = commands.execute(std::span(data + at, length), response);
        FUZZ_CHECK(answer >= k_header_size && answer <= sizeof response);
        uint32_t type = read_le<uint32_t>(response, 0);
        FUZZ_CHECK(type == k_resp_ok_nodata || type == k_resp_ok_display_info ||
                   (type >= k_resp_err_unspec && type <= k_resp_err_invalid_parameter));
        FUZZ_CHECK(commands.host_bytes() <= GpuCommands::k_max_host_bytes);
        at += length;
    }
    return 0;
}
