// A deterministic stand-in for libFuzzer (clang here cannot build GCC 12's <expected>): builds
// seed inputs from real images, mutates them with a fixed seed and feeds every mutation to
// LLVMFuzzerTestOneInput. Usage: DRIVER ITERATIONS [EXTRA_SEED_FILES...]
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "storage/endian.h"
#include "storage/image.h"
#include "storage/qcow2/format.h"
#include "storage/qcow2/qcow2_image.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

using namespace corral::storage;

std::vector<uint8_t> read_all(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

/// Small real images made through the library: plain data, compressed clusters, a snapshot.
std::vector<std::vector<uint8_t>> make_seeds() {
    std::vector<std::vector<uint8_t>> seeds;
    char pattern[] = "/tmp/corral-fuzz-seeds-XXXXXX";
    std::string dir = ::mkdtemp(pattern);
    for (int variant = 0; variant < 3; ++variant) {
        std::string path = dir + "/seed" + std::to_string(variant) + ".qcow2";
        ImageCreateOptions o{.size = 256u << 10, .cluster_size = 4096};
        if (variant == 1) o.compression = qcow2::CompressionType::Zstd;
        if (!create_image(path, o)) continue;
        {
            auto dev = open_image(path, ImageOpenOptions{.access = Access::ReadWrite});
            if (!dev) continue;
            auto* q = dynamic_cast<qcow2::Qcow2Image*>(dev->get());
            std::vector<uint8_t> data(4096);
            for (int c = 0; c < 12; ++c) {
                for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t((i / 64) * c);
                if (variant == 1) (void)q->write_compressed(uint64_t(c) * 8192, data);
                else (void)(*dev)->write_at(uint64_t(c) * 12288 + 100, data);
            }
            if (variant == 2) {
                (void)q->create_snapshot("seed");
                (void)(*dev)->write_at(0, data);
            }
            (void)(*dev)->flush();
        }
        seeds.push_back(read_all(path));
    }
    std::filesystem::remove_all(dir);
    return seeds;
}

}  // namespace

int main(int argc, char** argv) {
    long iterations = argc > 1 ? std::atol(argv[1]) : 2000;
    auto seeds = make_seeds();
    for (int i = 2; i < argc; ++i) seeds.push_back(read_all(argv[i]));
    if (seeds.empty()) {
        std::fprintf(stderr, "fuzz smoke: no seeds\n");
        return 1;
    }
    // Snapshot-table target inputs get a 2-byte count in front; give it table-shaped seeds too.
    std::mt19937_64 rng(12345);
    const uint64_t interesting[] = {0, 1, 0x200, 0x1000, 0x10000, 0xffffffff, 1ull << 40, ~0ull, 0x8000000000000000ull};
    for (auto& s : seeds) LLVMFuzzerTestOneInput(s.data(), s.size());
    for (long it = 0; it < iterations; ++it) {
        std::vector<uint8_t> input = seeds[rng() % seeds.size()];
        int mutations = 1 + int(rng() % 8);
        for (int m = 0; m < mutations && !input.empty(); ++m) {
            // Mostly the metadata-rich start of the file, sometimes anywhere.
            size_t limit = rng() % 4 ? std::min<size_t>(input.size(), 4096 * 4) : input.size();
            size_t at = rng() % limit;
            switch (rng() % 5) {
                case 0: input[at] ^= uint8_t(1u << (rng() % 8)); break;
                case 1: input[at] = uint8_t(rng()); break;
                case 2:
                    if (at + 8 <= input.size()) store_be64(&input[at & ~size_t(7)], interesting[rng() % std::size(interesting)]);
                    break;
                case 3:
                    if (at + 4 <= input.size()) store_be32(&input[at & ~size_t(3)], uint32_t(interesting[rng() % std::size(interesting)]));
                    break;
                case 4: input.resize(at + 1); break;  // truncation
            }
        }
        LLVMFuzzerTestOneInput(input.data(), input.size());
    }
    std::printf("fuzz smoke: %ld mutated inputs from %zu seeds, no crash\n", iterations, seeds.size());
    return 0;
}
