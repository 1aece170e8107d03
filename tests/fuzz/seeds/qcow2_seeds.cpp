// Seeds for the qcow2 targets: small real images made through the library (plain data,
// compressed clusters, an internal snapshot).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "../smoke_driver.h"
#include "storage/image.h"
#include "storage/qcow2/qcow2_image.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace corral::fuzz {

std::vector<Input> make_seeds() {
    using namespace corral::storage;
    std::vector<Input> seeds;
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
        std::ifstream in(path, std::ios::binary);
        seeds.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    std::filesystem::remove_all(dir);
    return seeds;
}

}  // namespace corral::fuzz
