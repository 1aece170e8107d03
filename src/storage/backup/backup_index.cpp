#include "storage/backup/backup_index.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace corral::storage::backup {

using nlohmann::json;

bool is_chunk_name(std::string_view name) {
    if (name.size() != 64)
        return false;
    for (char c : name)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return false;
    return true;
}

std::string encode_index_json(const BackupIndex& index) {
    json disks = json::array();
    for (const auto& d : index.disks) {
        json chunks = json::array();
        for (const auto& c : d.chunks)
            chunks.push_back(c.empty() ? json(nullptr) : json(c));
        disks.push_back({{"name", d.name}, {"virtual_size", d.virtual_size}, {"chunks", chunks}});
    }
    json j = {{"format", "corral-backup-index"},
              {"version", 1},
              {"id", index.id},
              {"vm", index.vm},
              {"created", index.created},
              {"chunk_size", index.chunk_size},
              {"config", json::parse(index.config_json, nullptr, false)},
              {"disks", disks}};
    if (j["config"].is_discarded())
        j["config"] = json::object();
    return j.dump();
}

Result<BackupIndex> decode_index_json(std::string_view text) {
    json j = json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded() || !j.is_object())
        return fail("backup index is not a JSON object", EINVAL);
    try {
        if (j.value("format", "") != "corral-backup-index" || j.value("version", 0) != 1)
            return fail("backup index has an unknown format or version", EINVAL);
        BackupIndex index;
        index.id = j.at("id").get<std::string>();
        index.vm = j.at("vm").get<std::string>();
        index.created = j.at("created").get<int64_t>();
        index.chunk_size = j.at("chunk_size").get<uint32_t>();
        index.config_json = j.at("config").dump();
        if (index.chunk_size == 0)
            return fail("backup index: chunk_size is 0", EINVAL);
        for (const auto& d : j.at("disks")) {
            DiskIndex disk;
            disk.name = d.at("name").get<std::string>();
            disk.virtual_size = d.at("virtual_size").get<uint64_t>();
            const uint64_t expected = (disk.virtual_size + index.chunk_size - 1) / index.chunk_size;
            const auto& chunks = d.at("chunks");
            if (!chunks.is_array() || chunks.size() != expected)
                return fail(fmt::format("backup index: disk '{}' lists {} chunks, its size needs {}",
                                        disk.name, chunks.is_array() ? chunks.size() : 0, expected),
                            EINVAL);
            disk.chunks.reserve(chunks.size());
            for (const auto& c : chunks) {
                if (c.is_null()) {
                    disk.chunks.emplace_back();
                    continue;
                }
                auto name = c.get<std::string>();
                if (!is_chunk_name(name))
                    return fail(fmt::format("backup index: disk '{}' names a bad chunk '{}'",
                                            disk.name, name),
                                EINVAL);
                disk.chunks.push_back(std::move(name));
            }
            index.disks.push_back(std::move(disk));
        }
        return index;
    } catch (const json::exception& e) {
        return fail(fmt::format("backup index is malformed: {}", e.what()), EINVAL);
    }
}

}  // namespace corral::storage::backup
