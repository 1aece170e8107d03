#include "daemon/disk_bitmaps.h"

#include <fmt/format.h>

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

Result<void> set_generation_bitmap(const std::filesystem::path& path, const std::string& bitmap) {
    std::vector<std::string> old;
    {
        auto image = TRY(storage::open_image(
            path.string(),
            {.access = storage::Access::ReadOnly, .format = storage::ImageFormat::Qcow2, .cache_bytes = 1u << 20}));
        auto* q = dynamic_cast<storage::qcow2::Qcow2Image*>(image.get());
        if (!q)
            return fail(fmt::format("'{}' is not a qcow2 image", path.string()), EINVAL);
        // Unreadable bitmaps are no reason to keep the old ones: qemu-img removes what it can.
        if (auto bitmaps = storage::qcow2::read_bitmaps(*q))
            for (const auto& b : bitmaps->bitmaps)
                if (b.name.starts_with(storage::backup::k_generation_prefix))
                    old.push_back(b.name);
    }
    for (const auto& name : old)
        TRY_VOID(qemu_img_bitmap("--remove", path, name));
    return qemu_img_bitmap("--add", path, bitmap);
}

}  // namespace corral::daemon
