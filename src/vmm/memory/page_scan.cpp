#include "vmm/memory/page_scan.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace corral::vmm {

namespace {
constexpr size_t k_pages_per_query = 4096;  // 16 MiB of RAM per pagemap read
}

bool page_is_zero(const uint8_t* page) {
    // OR 256 bytes together before each test, 16 bytes an instruction (SSE2 is baseline x86-64):
    // a test per 8-byte word cost twenty times the instructions, and every page a snapshot or a
    // migration's first round looks at goes through here.
#if defined(__SSE2__)
    const auto* blocks = reinterpret_cast<const __m128i*>(page);
    for (size_t i = 0; i < k_scan_page_size / 16; i += 16) {
        __m128i any = _mm_load_si128(blocks + i);
        for (size_t j = 1; j < 16; ++j)
            any = _mm_or_si128(any, _mm_load_si128(blocks + i + j));
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(any, _mm_setzero_si128())) != 0xFFFF)
            return false;
    }
#else
    const auto* words = reinterpret_cast<const uint64_t*>(page);
    for (size_t i = 0; i < k_scan_page_size / 8; ++i)
        if (words[i])
            return false;
#endif
    return true;
}

TouchedPages::TouchedPages(const GuestMemory& memory) {
    if (!memory.file_backed())
        m_pagemap = UniqueFd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
}

bool TouchedPages::maybe_data(const MemoryRegion& region, uint64_t offset) {
    const uint8_t* host = region.host + offset;
    if (!m_batch_host || host < m_batch_host || host >= m_batch_host + m_touched.size() * k_scan_page_size) {
        auto count = static_cast<size_t>(
            std::min<uint64_t>(k_pages_per_query, (region.size - offset + k_scan_page_size - 1) / k_scan_page_size));
        query(host, count);
    }
    return m_touched[static_cast<size_t>(host - m_batch_host) / k_scan_page_size];
}

void TouchedPages::query(const uint8_t* host, size_t count) {
    m_batch_host = host;
    m_touched.assign(count, true);
    if (!m_pagemap.valid())
        return;
    std::vector<uint64_t> entries(count);
    auto offset = static_cast<off_t>(reinterpret_cast<uintptr_t>(host) / k_scan_page_size * 8);
    ssize_t n = ::pread(m_pagemap.get(), entries.data(), count * 8, offset);
    if (n != static_cast<ssize_t>(count * 8))
        return;
    constexpr uint64_t k_present = 1ull << 63, k_swapped = 1ull << 62;
    for (size_t i = 0; i < count; ++i)
        m_touched[i] = (entries[i] & (k_present | k_swapped)) != 0;
}

}  // namespace corral::vmm
