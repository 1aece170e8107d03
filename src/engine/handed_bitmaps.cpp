#include "engine/handed_bitmaps.h"

#include <unistd.h>

#include <fmt/format.h>

#include "base/unique_fd.h"
#include "engine/vmm_control.h"
#include "storage/file.h"
#include "storage/qcow2/qcow2_image.h"

namespace corral::engine {

namespace {

/// One handed bitmap, checked: what the copy gets.
struct Handed {
    std::string name;
    storage::DirtyMap map;
};

Result<Handed> parse_handed(const nlohmann::json& entry, const DiskBitmap& bitmap) {
    if (!entry.is_object())
        return fail("a handed bitmap is not an object", EPROTO);
    auto name = entry.find("name");
    auto granularity = entry.find("granularity");
    auto disk_size = entry.find("disk_size");
    auto bits = entry.find("bits");
    if (name == entry.end() || !name->is_string() || granularity == entry.end() || !granularity->is_number_unsigned() ||
        disk_size == entry.end() || !disk_size->is_number_unsigned() || bits == entry.end() || !bits->is_string())
        return fail("a handed bitmap needs \"name\", \"granularity\", \"disk_size\" and \"bits\"", EPROTO);
    Handed out{.name = name->get<std::string>(), .map = {}};
    // Only what was asked for: the old generations.
    if (bitmap.replaces.empty() || !out.name.starts_with(bitmap.replaces))
        return fail(fmt::format("corral-vmm handed bitmap '{}', which is not one named {}*", out.name, bitmap.replaces),
                    EPROTO);
    auto decoded = TRY(decode_base64(bits->get_ref<const std::string&>(), fmt::format("bitmap '{}'", out.name)));
    out.map = storage::DirtyMap{.granularity = granularity->get<uint64_t>(),
                                .disk_size = disk_size->get<uint64_t>(),
                                .bits = std::vector<uint8_t>(decoded.begin(), decoded.end())};
    return out;
}

/// Writes `handed` into the copy image open as `fd` (add_bitmap checks the sizes against it).
Result<void> write_copy(int fd, size_t disk, const std::vector<Handed>& handed) {
    UniqueFd own(::dup(fd));
    if (!own.valid())
        return fail_errno("dup of a bitmap copy's descriptor");
    auto file = storage::File::adopt(std::move(own), fmt::format("the bitmap copy of disk {}", disk),
                                     storage::Access::ReadWrite);
    auto image = TRY(storage::qcow2::Qcow2Image::open(
        std::move(file), storage::qcow2::OpenOptions{.access = storage::Access::ReadWrite},
        [](const storage::qcow2::Header&) -> Result<std::unique_ptr<storage::BlockDevice>> {
            return fail("a bitmap copy has no backing file", EINVAL);
        }));
    for (const auto& bitmap : handed)
        TRY_VOID(image->add_bitmap(bitmap.name, bitmap.map));
    return image->store_bitmaps();
}

std::string join(const nlohmann::json& notes) {
    std::string out;
    for (const auto& note : notes.is_array() ? notes : nlohmann::json::array())
        if (note.is_string())
            out += (out.empty() ? "" : "; ") + note.get<std::string>();
    return out;
}

}  // namespace

BitmapNotes copy_handed_bitmaps(const nlohmann::json& answer, const std::vector<size_t>& disks,
                                const DiskBitmap& bitmap) {
    BitmapNotes notes;
    auto all = answer.find("bitmaps");
    if (all == answer.end() || !all->is_array()) {
        for (size_t disk : disks)
            notes[disk] =
                "this VM's corral-vmm is older than corrald and hands no bitmaps at a backup's instant (a VM started "
                "again runs the new one)";
        return notes;
    }
    for (size_t disk : disks) {
        if (disk >= all->size() || !(*all)[disk].is_object()) {
            notes[disk] = fmt::format("corral-vmm's answer has no bitmaps for disk {}", disk);
            continue;
        }
        const auto& entry = (*all)[disk];
        if (auto error = entry.find("error"); error != entry.end()) {
            notes[disk] = fmt::format("corral-vmm could not start the disk's next generation: {}",
                                      error->is_string() ? error->get<std::string>() : std::string("no reason given"));
            continue;
        }
        std::vector<Handed> handed;
        std::string wrong;
        static const nlohmann::json k_none = nlohmann::json::array();
        auto list = entry.find("handed");
        // A reference either way: the bits are megabytes of base64 for a large disk.
        const nlohmann::json& items = list != entry.end() && list->is_array() ? *list : k_none;
        for (const auto& item : items) {
            auto parsed = parse_handed(item, bitmap);
            if (parsed)
                handed.push_back(std::move(*parsed));
            else
                wrong = parsed.error().describe();
        }
        const std::string said = join(entry.value("notes", nlohmann::json::array()));
        if (!wrong.empty()) {
            notes[disk] = "corral-vmm's bitmaps are unusable: " + wrong;
            continue;
        }
        if (handed.empty()) {
            // None to hand and nothing to say: the disk had no generation, and the backup's own
            // reason ("no bitmap", "no previous backup ...") says it best, as with QEMU.
            if (!said.empty())
                notes[disk] = said;
            continue;
        }
        auto copy = bitmap.copy_to.find(disk);
        if (copy == bitmap.copy_to.end())
            continue;  // corrald made no copy: it says why itself
        if (auto written = write_copy(copy->second, disk, handed); !written)
            notes[disk] = "the handed bitmap could not be copied: " + written.error().describe();
    }
    return notes;
}

}  // namespace corral::engine
