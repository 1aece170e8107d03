#include "vmm/memory/page_scan.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace corral::vmm {
namespace {

struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
};

TEST(PageScan, AZeroPageIsZeroAndOneSetByteAnywhereIsNot) {
    std::unique_ptr<uint8_t, FreeDeleter> page(static_cast<uint8_t*>(std::aligned_alloc(4096, 4096)));
    std::memset(page.get(), 0, 4096);
    EXPECT_TRUE(page_is_zero(page.get()));
    // Every position of the 256-byte blocks the scan ORs together, and the page's ends.
    for (size_t at : {0u, 1u, 15u, 16u, 255u, 256u, 2047u, 4080u, 4095u}) {
        page.get()[at] = 0x80;
        EXPECT_FALSE(page_is_zero(page.get())) << "a byte set at " << at;
        page.get()[at] = 0;
    }
    EXPECT_TRUE(page_is_zero(page.get()));
}

}  // namespace
}  // namespace corral::vmm
