#include "storage/copy.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "storage/qcow2/qcow2_image.h"
#include "storage/throttled_progress.h"

namespace corral::storage {

namespace {

bool all_zero(const uint8_t* p, size_t n) {
    if (n == 0)
        return true;
    return p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0;
}

}  // namespace

Result<void> copy_image_data(BlockDevice& src, BlockDevice& dst, const Progress& progress) {
    const uint64_t total = src.size();
    if (dst.size() < total)
        return fail(
            fmt::format("copy destination holds {} bytes, the source {}", dst.size(), total),
            EINVAL);
    auto* qdst = dynamic_cast<qcow2::Qcow2Image*>(&dst);
    // Zero detection works on whole destination allocation units: qcow2 clusters, raw pages.
    const uint64_t unit = qdst ? qdst->cluster_size() : 4096;
    const uint64_t chunk = std::max<uint64_t>(unit, 2u << 20) / unit * unit;
    std::vector<uint8_t> buffer(chunk);
    ThrottledProgress reporter(progress, total);
    const auto cancelled = [] { return fail("the copy was cancelled", ECANCELED); };
    if (reporter.report(0) == Proceed::Cancel)
        return cancelled();
    for (uint64_t pos = 0; pos < total;) {
        Extent e = TRY(src.block_status(pos, std::min<uint64_t>(chunk, total - pos)));
        uint64_t n = std::clamp<uint64_t>(e.length, 1, std::min<uint64_t>(chunk, total - pos));
        if (e.kind == ExtentKind::Data) {
            auto buf = std::span(buffer).subspan(0, n);
            TRY_VOID(src.read_at(pos, buf));
            for (uint64_t at = 0; at < n;) {
                uint64_t len = std::min<uint64_t>(n - at, unit - (pos + at) % unit);
                if (!all_zero(&buf[at], len))
                    TRY_VOID(dst.write_at(pos + at, buf.subspan(at, len)));
                at += len;
            }
        }
        pos += n;
        if (pos != total && reporter.report(pos) == Proceed::Cancel)
            return cancelled();
    }
    TRY_VOID(dst.flush());
    // The caller keeps the copy only after this: a cancel that came during the flush (which can
    // take longer than the copy into the page cache) still counts.
    if (reporter.report(total) == Proceed::Cancel)
        return cancelled();
    return {};
}

}  // namespace corral::storage
