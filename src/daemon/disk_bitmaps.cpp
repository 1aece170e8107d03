#include "daemon/disk_bitmaps.h"

#include <fmt/format.h>

#include "base/log.h"
#include "engine/process.h"
#include "storage/backup/incremental.h"
#include "storage/image.h"
#include "storage/qcow2/qcow2_bitmaps.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::daemon {

namespace {

constexpr auto k_qemu_img_timeout = std::chrono::seconds(60);

Result<void> qemu_img_bitmap(const char* op, const std::filesystem::path& path, const std::string& bitmap) {
    const auto qemu_img = engine::find_on_path("qemu-img");
    if (qemu_img.empty())
        return fail("qemu-img is not installed (Debian: qemu-utils)", ENOENT);
    auto ran = TRY(engine::run_capture({qemu_img.string(), "bitmap", op, "-f", "qcow2", path.string(), bitmap},
                                       k_qemu_img_timeout));
    if (ran.exit_code != 0)
        return fail(
            fmt::format("qemu-img bitmap {} {}: {}", op, bitmap, ran.timed_out ? std::string("timed out") : ran.output),
            EIO);
    return {};
}

}  // namespace

Result<size_t> remove_generation_bitmaps(const std::filesystem::path& path) {
    std::vector<std::string> old;
    {
        auto image = TRY(storage::open_image(
            path.string(),
            {.access = storage::Access::ReadOnly, .format = storage::ImageFormat::Qcow2, .cache_bytes = 1u << 20}));
        auto* q = dynamic_cast<storage::qcow2::Qcow2Image*>(image.get());
        if (!q)
            return fail(fmt::format("'{}' is not a qcow2 image", path.string()), EINVAL);
        // Stale bitmaps (autoclear bit clear) do not exist for QEMU: it drops them on its own.
        auto bitmaps = storage::qcow2::read_bitmaps(*q);
        if (!bitmaps)
            return fail(bitmaps.error().with_context(fmt::format("the bitmaps of '{}'", path.string())));
        if (bitmaps->consistent)
            for (const auto& b : bitmaps->bitmaps)
                if (b.name.starts_with(storage::backup::k_generation_prefix))
                    old.push_back(b.name);
    }
    for (const auto& name : old)
        TRY_VOID(qemu_img_bitmap("--remove", path, name));
    return old.size();
}

Result<void> set_generation_bitmap(const std::filesystem::path& path, const std::string& bitmap) {
    // An old generation that cannot go is no reason to start no new one: the next backup looks
    // for the new one by name.
    if (auto removed = remove_generation_bitmaps(path); !removed)
        log_warning("'{}': the old generation bitmaps stay: {}", path.string(), removed.error().describe());
    return qemu_img_bitmap("--add", path, bitmap);
}

}  // namespace corral::daemon
