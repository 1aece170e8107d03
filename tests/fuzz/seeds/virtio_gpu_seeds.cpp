// Seeds for virtio_gpu_fuzz: the command sequence Linux's virtio_gpu driver sends to bring up
// its fbdev console (display info, a resource with backing in guest RAM, transfer, scanout,
// flush), and its teardown.
#include <cstring>
#include <initializer_list>

#include "../smoke_driver.h"

namespace corral::fuzz {

namespace {

struct Program {
    Input bytes;
    /// One command: the header (type, flags 0) and le32 fields.
    void command(uint32_t type, std::initializer_list<uint32_t> fields) {
        size_t length = 24 + 4 * fields.size();
        bytes.push_back(static_cast<uint8_t>(length));
        bytes.push_back(static_cast<uint8_t>(length >> 8));
        size_t start = bytes.size();
        bytes.resize(start + length, 0);
        std::memcpy(bytes.data() + start, &type, 4);
        size_t at = start + 24;
        for (uint32_t field : fields) {
            std::memcpy(bytes.data() + at, &field, 4);
            at += 4;
        }
    }
};

}  // namespace

std::vector<Input> make_seeds() {
    Program bring_up;
    bring_up.command(0x0100, {});                                // GET_DISPLAY_INFO
    bring_up.command(0x0101, {1, 2, 64, 48});                    // RESOURCE_CREATE_2D B8G8R8X8 64x48
    bring_up.command(0x0106, {1, 2, 0x10000, 0, 6000, 0,         // ATTACH_BACKING, two entries
                              0x20000, 0, 64 * 48 * 4 - 6000, 0});
    bring_up.command(0x0105, {0, 0, 64, 48, 0, 0, 1, 0});        // TRANSFER_TO_HOST_2D
    bring_up.command(0x0103, {0, 0, 64, 48, 0, 1});              // SET_SCANOUT
    bring_up.command(0x0104, {8, 8, 16, 16, 1, 0});              // RESOURCE_FLUSH
    bring_up.command(0x0105, {8, 8, 16, 16, (8 * 64 + 8) * 4, 0, 1, 0});
    bring_up.command(0x0104, {8, 8, 16, 16, 1, 0});
    Program teardown = bring_up;
    teardown.command(0x0101, {2, 4, 32, 32});                    // X8R8G8B8
    teardown.command(0x0106, {2, 1, 0x30000, 0, 32 * 32 * 4, 0});
    teardown.command(0x0105, {0, 0, 32, 32, 0, 0, 2, 0});
    teardown.command(0x0103, {0, 0, 32, 32, 0, 2});
    teardown.command(0x0104, {0, 0, 32, 32, 2, 0});
    teardown.command(0x0107, {1, 0});                            // DETACH_BACKING
    teardown.command(0x0102, {1, 0});                            // UNREF
    teardown.command(0x0103, {0, 0, 0, 0, 0, 0});                // scanout off
    teardown.command(0x0102, {2, 0});
    return {bring_up.bytes, teardown.bytes};
}

}  // namespace corral::fuzz
