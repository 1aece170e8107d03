#include "vmm/control/control_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <utility>

namespace corral::vmm {
namespace {

constexpr std::array<std::pair<ControlAction, const char*>, 13> k_actions = {{
    {ControlAction::Status, "status"},
    {ControlAction::Pause, "pause"},
    {ControlAction::Resume, "resume"},
    {ControlAction::Shutdown, "shutdown"},
    {ControlAction::Stop, "stop"},
    {ControlAction::Counters, "counters"},
    {ControlAction::Reset, "reset"},
    {ControlAction::Snapshot, "snapshot"},
    {ControlAction::Migrate, "migrate"},
    {ControlAction::Screenshot, "screenshot"},
    {ControlAction::Balloon, "balloon"},
    {ControlAction::Limits, "limits"},
    {ControlAction::DiskSnapshot, "disk_snapshot"},
}};

/// An optional whole-number field between `min` and `max`; `out` keeps its default when absent.
template <typename Number>
Result<void> optional_number(const nlohmann::json& request, const char* action, const char* field, uint64_t min,
                             uint64_t max, Number& out) {
    auto value = request.find(field);
    if (value == request.end()) return {};
    if (!value->is_number_unsigned() || value->get<uint64_t>() < min || value->get<uint64_t>() > max)
        return fail(fmt::format("{}{} \"{}\" must be a whole number from {} to {}", action,
                                std::string_view(action).ends_with('s') ? "'" : "'s", field, min, max));
    out = static_cast<Number>(value->get<uint64_t>());
    return {};
}

/// A bitmap name or prefix: printable ASCII without spaces, at most QEMU's 1023 bytes.
bool bitmap_name_ok(const nlohmann::json& value, size_t min) {
    if (!value.is_string())
        return false;
    const auto& text = value.get_ref<const std::string&>();
    return text.size() >= min && text.size() <= 1023 &&
           std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 127; });
}

std::string action_list() {
    std::string list;
    for (const auto& [action, name] : k_actions) list += fmt::format("{}{}", list.empty() ? "" : ", ", name);
    return list;
}

}  // namespace

const char* to_string(ControlAction action) {
    for (const auto& [candidate, name] : k_actions)
        if (candidate == action) return name;
    return "unknown";
}

Result<ControlRequest> parse_control_request(std::string_view line) {
    nlohmann::json request = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (request.is_discarded()) return fail("the request is not valid JSON");
    if (!request.is_object()) return fail("the request must be a JSON object like {\"action\":\"status\"}");
    auto action = request.find("action");
    if (action == request.end() || !action->is_string())
        return fail(fmt::format("the request needs an \"action\" string: one of {}", action_list()));
    const auto& name = action->get_ref<const std::string&>();
    ControlRequest parsed;
    bool known = false;
    for (const auto& [candidate, candidate_name] : k_actions)
        if (name == candidate_name) {
            parsed.action = candidate;
            known = true;
        }
    if (!known) return fail(fmt::format("unknown action '{}'; expected one of {}", name, action_list()));
    if (parsed.action == ControlAction::Snapshot) {
        auto dir = request.find("dir");
        if (dir == request.end() || !dir->is_string() || dir->get_ref<const std::string&>().empty() ||
            dir->get_ref<const std::string&>().front() != '/')
            return fail("snapshot needs \"dir\": an absolute path to an empty or new folder");
        parsed.snapshot_dir = dir->get<std::string>();
        auto resume = request.find("resume");
        if (resume != request.end()) {
            if (!resume->is_boolean()) return fail("snapshot's \"resume\" must be true (run on) or false (stay paused)");
            parsed.resume = resume->get<bool>();
        }
    }
    if (parsed.action == ControlAction::Migrate) {
        auto to = request.find("to");
        if (to == request.end() || !to->is_string() || to->get_ref<const std::string&>().empty())
            return fail("migrate needs \"to\": where the destination listens, unix:/ABSOLUTE/PATH or tcp:HOST:PORT");
        parsed.migrate_to = to->get<std::string>();
        TRY_VOID(optional_number(request, "migrate", "downtime_ms", 1, 60000, parsed.downtime_ms));
        TRY_VOID(optional_number(request, "migrate", "timeout_s", 1, 86400, parsed.timeout_s));
        TRY_VOID(optional_number(request, "migrate", "max_bandwidth_bytes", k_min_migration_bandwidth,
                                 k_max_migration_bandwidth, parsed.max_bandwidth_bytes));
    }
    if (parsed.action == ControlAction::Balloon) {
        auto target = request.find("target_bytes");
        if (target != request.end()) {
            if (!target->is_number_unsigned())
                return fail("balloon's \"target_bytes\" must be a whole number of bytes (the memory the guest keeps)");
            parsed.balloon_target_bytes = target->get<uint64_t>();
        }
    }
    if (parsed.action == ControlAction::DiskSnapshot) {
        auto tag = request.find("tag");
        const bool printable =
            tag != request.end() && tag->is_string() && !tag->get_ref<const std::string&>().empty() &&
            tag->get_ref<const std::string&>().size() <= 128 &&
            std::all_of(tag->get_ref<const std::string&>().begin(), tag->get_ref<const std::string&>().end(),
                        [](char c) { return c > ' ' && c < 127; });
        if (!printable)
            return fail(
                "disk_snapshot needs \"tag\": the snapshot's name, 1 to 128 printable characters without spaces");
        parsed.disk_snapshot_tag = tag->get<std::string>();
        if (auto remove = request.find("delete"); remove != request.end()) {
            if (!remove->is_boolean())
                return fail("disk_snapshot's \"delete\" must be true or false");
            parsed.disk_snapshot_delete = remove->get<bool>();
        }
        if (auto bitmap = request.find("bitmap"); bitmap != request.end()) {
            if (parsed.disk_snapshot_delete)
                return fail("disk_snapshot's \"bitmap\" goes with taking a snapshot, not with \"delete\"");
            if (!bitmap->is_object())
                return fail(
                    "disk_snapshot's \"bitmap\" must be an object like {\"name\":\"gen-2\",\"replaces\":\"gen-\"}");
            auto name = bitmap->find("name");
            if (name == bitmap->end() || !bitmap_name_ok(*name, 1))
                return fail(
                    "disk_snapshot's \"bitmap\" needs \"name\": the new bitmap's name, 1 to 1023 printable "
                    "characters without spaces");
            DiskSnapshotBitmap wanted{.name = name->get<std::string>(), .replaces = {}};
            if (auto replaces = bitmap->find("replaces"); replaces != bitmap->end()) {
                if (!bitmap_name_ok(*replaces, 0))
                    return fail(
                        "disk_snapshot's bitmap \"replaces\" must be a name prefix of at most 1023 printable "
                        "characters without spaces");
                wanted.replaces = replaces->get<std::string>();
            }
            parsed.disk_snapshot_bitmap = std::move(wanted);
        }
    }
    if (parsed.action == ControlAction::Limits) {
        TRY_VOID(
            optional_number(request, "limits", "disk_bytes_per_s", 0, k_max_io_rate, parsed.limits.disk_bytes_per_s));
        TRY_VOID(optional_number(request, "limits", "disk_ops_per_s", 0, k_max_io_rate, parsed.limits.disk_ops_per_s));
        TRY_VOID(
            optional_number(request, "limits", "nic_bytes_per_s", 0, k_max_io_rate, parsed.limits.nic_bytes_per_s));
    }
    return parsed;
}

std::string control_error_answer(std::string_view message) {
    return nlohmann::json{{"ok", false}, {"error", std::string(message)}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace corral::vmm
