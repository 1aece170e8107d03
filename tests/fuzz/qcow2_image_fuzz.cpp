// libFuzzer target: a whole qcow2 file (header, L1/L2 tables, refcount structures, snapshot
// table, compressed clusters). The input becomes an in-memory file that is opened, read end to
// end, mapped and checked read-only, then opened read-write and written once. Errors are fine;
// crashes, hangs, reads outside the file and unbounded allocations are not.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "storage/image.h"
#include "storage/qcow2/qcow2_image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using namespace corral::storage;
    if (size > (8u << 20)) return 0;
    int fd = ::memfd_create("qcow2-fuzz", 0);
    if (fd < 0) return 0;
    if (::write(fd, data, size) != ssize_t(size)) {
        ::close(fd);
        return 0;
    }
    std::string path = "/proc/self/fd/" + std::to_string(fd);
    auto opts = ImageOpenOptions{.access = Access::ReadOnly, .format = ImageFormat::Qcow2, .cache_bytes = 1u << 20};
    if (auto dev = open_image(path, opts)) {
        std::vector<uint8_t> buffer(64 * 1024);
        // Bound the work on huge virtual disks: sample at most 64 chunks spread over the disk.
        uint64_t disk = (*dev)->size();
        uint64_t step = std::max<uint64_t>(buffer.size(), disk / 64);
        for (uint64_t off = 0; off < disk; off += step) {
            uint64_t n = std::min<uint64_t>(buffer.size(), disk - off);
            (void)(*dev)->read_at(off, std::span(buffer).subspan(0, n));
            (void)(*dev)->block_status(off, n);
        }
        if (auto* q = dynamic_cast<qcow2::Qcow2Image*>(dev->get())) (void)q->check(qcow2::Repair::No);
    }
    opts.access = Access::ReadWrite;
    if (auto dev = open_image(path, opts)) {
        std::vector<uint8_t> block(4096, 0xab);
        if ((*dev)->size() >= 8192) (void)(*dev)->write_at(4096, block);
        (void)(*dev)->flush();
    }
    ::close(fd);
    return 0;
}
