#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "base/unique_fd.h"
#include "vmm/memory/guest_memory.h"

namespace corral::vmm {

inline constexpr size_t k_scan_page_size = 4096;

/// Whether the 4 KiB page at `page` (16-byte aligned, as guest RAM and any page-aligned buffer are)
/// holds only zeros.
bool page_is_zero(const uint8_t* page);

/// Which pages of anonymous guest RAM were ever touched, from /proc/self/pagemap (present or
/// swapped out): a page never touched is zero without being read, so a snapshot or a
/// migration's first round costs time in proportion to touched memory, not to RAM size.
/// File-backed memory (an untouched page holds the file's data) and a host without pagemap
/// count every page as maybe touched.
class TouchedPages {
public:
    explicit TouchedPages(const GuestMemory& memory);
    /// Whether the page at `offset` (page-aligned) of `region` may hold data. Asks the kernel
    /// for 16 MiB of pages at a time; walk each region forwards.
    bool maybe_data(const MemoryRegion& region, uint64_t offset);

private:
    void query(const uint8_t* host, size_t count);

    UniqueFd m_pagemap;
    std::vector<bool> m_touched;
    const uint8_t* m_batch_host = nullptr;  // the host address m_touched starts at
};

}  // namespace corral::vmm
