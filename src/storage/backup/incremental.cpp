#include "storage/backup/incremental.h"

#include <fmt/format.h>

#include <variant>

#include "storage/qcow2/qcow2_bitmaps.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::storage::backup {

std::string generation_bitmap(const std::string& id) {
    return std::string(k_generation_prefix) + id;
}

namespace {

/// The plan for `disk`, or the reason for a full read.
Result<std::variant<DiskSource::Incremental, std::string>> plan(Repository& repo, const std::string& vm,
                                                                const DiskSource& disk,
                                                                const std::string& bitmaps_from) {
    using Plan = std::variant<DiskSource::Incremental, std::string>;
    auto backups = TRY(repo.catalogue().list(vm));
    if (backups.empty())
        return Plan(fmt::format("no previous backup of {} in this repository", vm));
    const BackupRecord& previous = backups.back();

    auto opened = open_image(bitmaps_from.empty() ? disk.path : bitmaps_from,
                             {.access = Access::ReadOnly, .format = disk.format, .cache_bytes = 1u << 20});
    if (!opened)
        return Plan(fmt::format("cannot open the disk: {}", opened.error().describe()));
    auto* image = dynamic_cast<qcow2::Qcow2Image*>(opened->get());
    if (!image)
        return Plan(std::string("a raw disk keeps no bitmap"));
    auto bitmaps = qcow2::read_bitmaps(*image);
    if (!bitmaps)
        return Plan(fmt::format("the disk's bitmaps are unreadable: {}", bitmaps.error().describe()));
    const std::string expected = generation_bitmap(previous.id);
    const qcow2::BitmapEntry* found = nullptr;
    std::string other;
    for (const auto& b : bitmaps->bitmaps) {
        if (b.name == expected)
            found = &b;
        else if (b.name.starts_with(k_generation_prefix))
            other = b.name.substr(k_generation_prefix.size());
    }
    if (!found) {
        if (other.empty())
            return Plan(std::string("no bitmap"));
        auto record = TRY(repo.catalogue().find(other));
        if (!record || record->state != "complete")
            return Plan(fmt::format(
                "the disk's bitmap is of backup {}, which was deleted, failed or is in another repository", other));
        return Plan(fmt::format("the disk's bitmap is of backup {}, not of the newest backup {}", other, previous.id));
    }
    if (!bitmaps->consistent)
        return Plan(std::string("the bitmap is stale: a program that keeps no bitmaps wrote the disk since"));
    if (found->in_use())
        return Plan(std::string("the bitmap was in use at a crash (QEMU did not close the disk)"));
    if (!found->enabled())
        return Plan(std::string("the bitmap is disabled (it does not record writes)"));

    auto index = repo.read_index(previous.id);
    if (!index)
        return Plan(fmt::format("previous backup {} is unreadable: {}", previous.id, index.error().describe()));
    const DiskIndex* base = nullptr;
    for (const auto& d : index->disks)
        if (d.name == disk.name)
            base = &d;
    if (!base)
        return Plan(fmt::format("previous backup {} has no disk {}", previous.id, disk.name));
    if (base->virtual_size != image->size() || index->chunk_size != repo.chunk_size())
        return Plan(fmt::format("the disk's size changed since backup {}", previous.id));
    auto map = qcow2::read_bitmap(*image, *found);
    if (!map)
        return Plan(fmt::format("the bitmap is unreadable: {}", map.error().describe()));
    return Plan(DiskSource::Incremental{.base = previous.id, .base_chunks = base->chunks, .dirty = std::move(*map)});
}

}  // namespace

Result<void> plan_incremental(Repository& repo, const std::string& vm, DiskSource& disk,
                              const std::string& bitmaps_from) {
    auto planned = TRY(plan(repo, vm, disk, bitmaps_from));
    if (auto* why = std::get_if<std::string>(&planned)) {
        disk.incremental.reset();
        disk.full_reason = std::move(*why);
    } else {
        disk.incremental = std::move(std::get<DiskSource::Incremental>(planned));
        disk.full_reason.clear();
    }
    return {};
}

}  // namespace corral::storage::backup
