// libFuzzer target for virtio-blk request parsing and execution: the input is a guest's memory
// image (see virtio_fuzz_layout.h) whose request queue holds chains the fuzzer built. Every
// chain the queue accepts goes through block::parse_request and, when valid, execute_request
// on a 64-sector RAM disk (a std::vector, so AddressSanitizer sees any access past the disk).
// Parsed data must lie in guest RAM (a guest may alias its own buffers, even with the status
// byte), add up to data_bytes and stay inside the disk; the used
// length must fit the chain's writable bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "../unit/vmm/memory_disk.h"
#include "fuzz_check.h"
#include "virtio_fuzz_layout.h"
#include "vmm/devices/virtio/block/request.h"
#include "vmm/devices/virtio/queue.h"
#include "vmm/memory/guest_memory.h"

namespace {

using namespace corral::vmm;
using namespace corral::vmm::virtio;
using namespace corral::fuzz::virtio_layout;

constexpr uint64_t k_disk_sectors = 64;

bool in_ram(const uint8_t* pointer, uint64_t length, const uint8_t* ram) {
    return pointer >= ram && length <= k_memory && pointer + length <= ram + k_memory;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static GuestMemory memory = GuestMemory::create(k_memory).value();
    if (size < k_prefix) return 0;
    uint8_t* ram = memory.host_pointer(0, k_memory);
    std::memset(ram, 0, k_memory);
    std::memcpy(ram, data + k_prefix, std::min<size_t>(size - k_prefix, k_memory));
    // Control byte: ring features, then what the device offers and the driver negotiated.
    QueueFeatures features{.indirect_descriptors = (data[0] & 1) != 0, .event_index = (data[0] & 2) != 0};
    bool read_only = (data[0] & 4) != 0;
    block::RequestLimits limits{
        .capacity_sectors = k_disk_sectors,
        .read_only = read_only,
        .discard = (data[0] & 8) != 0,
        .write_zeroes = (data[0] & 16) != 0,
        .max_discard_sectors = 32,
        .max_write_zeroes_sectors = 32,
        .max_data_bytes = 16 * block::k_sector_size,
    };
    testing::MemoryDisk disk(k_disk_sectors * block::k_sector_size, read_only);
    QueueLayout layout{queue_size(data[1]), k_ring0_descriptors, k_ring0_avail, k_ring0_used};
    auto queue = Virtqueue::create(memory, layout, features);
    FUZZ_CHECK(queue);  // the layout is valid by construction

    while (auto chain = queue->pop()) {
        auto parsed = block::parse_request(*chain, limits);
        if (!parsed) {
            FUZZ_CHECK(chain->writable.empty());  // only a chain without a status byte is unanswerable
            queue->add_used(chain->head, 0);
            continue;
        }
        FUZZ_CHECK(in_ram(parsed->status, 1, ram));
        if (parsed->failed) {
            FUZZ_CHECK(parsed->request.data.empty());
            *parsed->status = parsed->status_value;
            queue->add_used(chain->head, 1);
            continue;
        }
        const block::Request& request = parsed->request;
        uint64_t total = 0;
        for (auto span : request.data) {
            FUZZ_CHECK(!span.empty() && in_ram(span.data(), span.size(), ram));
            total += span.size();
        }
        FUZZ_CHECK(total == request.data_bytes);
        if (request.type == block::RequestType::In || request.type == block::RequestType::Out) {
            FUZZ_CHECK(request.data_bytes <= limits.max_data_bytes);
            FUZZ_CHECK(request.sector + request.data_bytes / block::k_sector_size <= k_disk_sectors);
        }
        FUZZ_CHECK(!read_only || request.type == block::RequestType::In || request.type == block::RequestType::Flush ||
                   request.type == block::RequestType::GetId);
        auto completion = block::execute_request(request, disk, "fuzz-serial");
        FUZZ_CHECK(completion.written <= chain->writable_bytes);
        *parsed->status = completion.status;
        queue->add_used(chain->head, completion.written);
    }
    return 0;
}
