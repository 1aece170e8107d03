#include "cli/capacity_plan.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "cli/json_fields.h"
#include "cli/size.h"
#include "cli/table.h"

namespace corral::cli {

namespace {

using json = nlohmann::json;

constexpr const char* k_shape_help = "a VM shape is VCPUScpu/MEMORY, like 2cpu/4G or 1cpu/512M";

std::optional<uint64_t> whole_number(std::string_view text) {
    uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
    return value;
}

/// "2cpu/4G" into {"vcpus": 2, "memory_mib": 4096}.
Result<json> parse_shape(std::string_view text) {
    const auto slash = text.find('/');
    const std::string_view cpus = text.substr(0, slash);
    if (slash == std::string_view::npos || !cpus.ends_with("cpu"))
        return fail(fmt::format("'{}' is not a VM shape: {}", text, k_shape_help));
    const auto vcpus = whole_number(cpus.substr(0, cpus.size() - 3));
    if (!vcpus || *vcpus == 0) return fail(fmt::format("'{}': the vCPUs must be a whole number from 1 ({})", text, k_shape_help));
    auto memory = parse_size_mib(text.substr(slash + 1));
    if (!memory || *memory == 0)
        return fail(fmt::format("'{}': the memory must be a size of whole MiB ({})", text, k_shape_help));
    return json{{"vcpus", *vcpus}, {"memory_mib", *memory}};
}

Result<json> parse_what_if(const std::string& text) {
    constexpr const char* k_help = "a what-if is 'add N' (N VMs of --shape), 'add NxVCPUScpu/MEMORY' (like add 10x2cpu/4G) "
                                   "or 'remove VM'";
    if (text.starts_with("remove ")) {
        const std::string vm = text.substr(7);
        if (vm.empty() || vm.find(' ') != std::string::npos) return fail(fmt::format("'{}': {}", text, k_help));
        return json{{"remove", vm}};
    }
    if (!text.starts_with("add ")) return fail(fmt::format("'{}' is not a what-if: {}", text, k_help));
    const std::string_view rest = std::string_view(text).substr(4);
    const auto times = rest.find('x');
    const auto count = whole_number(rest.substr(0, times));
    if (!count || *count == 0) return fail(fmt::format("'{}': the count must be a whole number from 1 ({})", text, k_help));
    json change{{"add", *count}};
    if (times != std::string_view::npos) {
        auto shape = parse_shape(rest.substr(times + 1));
        if (!shape) return fail(fmt::format("'{}': {}", text, shape.error().message()));
        change.update(*shape);
    }
    return change;
}

/// A number with at most `decimals` decimals, without trailing zeros; "-" for null or absent.
std::string number(const json& object, const char* key, int decimals = 2) {
    if (!object.is_object() || !object.contains(key) || !object[key].is_number()) return "-";
    std::string out = fmt::format("{:.{}f}", object[key].get<double>(), decimals);
    if (out.find('.') != std::string::npos) {
        while (out.ends_with('0')) out.pop_back();
        if (out.ends_with('.')) out.pop_back();
    }
    return out;
}

}  // namespace

Result<nlohmann::json> capacity_plan_body(const std::string& shape, const std::vector<std::string>& what_ifs) {
    json body = json::object();
    if (!shape.empty()) body["shape"] = TRY(parse_shape(shape));
    for (const auto& text : what_ifs) body["what_if"].push_back(TRY(parse_what_if(text)));
    return body;
}

std::string render_capacity_plan(const nlohmann::json& plan) {
    Table table({"RESOURCE", "CAPACITY", "USED (P95)", "A NEW VM USES", "FITS BY USE", "ALLOCATED", "ALLOWED",
                 "FITS BY POLICY", "GROWTH/DAY", "FULL IN"});
    if (plan.contains("resources") && plan["resources"].is_array()) {
        for (const auto& resource : plan["resources"]) {
            const bool memory = field_text(resource, "resource") == "memory";
            // Memory as sizes (1.5G); CPU use in CPUs, what the policy counts in vCPUs.
            auto amount = [&](const char* key, const char* unit) {
                if (!memory) return number(resource, key) == "-" ? "-" : number(resource, key) + " " + unit;
                if (!resource.contains(key) || !resource[key].is_number()) return std::string("-");
                return format_size(static_cast<uint64_t>(std::max(0.0, resource[key].get<double>()) * 1024 * 1024));
            };
            const std::string days = number(resource, "full_in_days", 1);
            table.add_row({field_text(resource, "resource"), amount("capacity", "CPUs"), amount("used_p95", "CPUs"),
                           amount("expected_per_vm", "CPUs"), number(resource, "fits_by_use", 0),
                           amount("allocated", "vCPUs"), amount("allowed", "vCPUs"),
                           number(resource, "fits_by_policy", 0), amount("growth_per_day", "CPUs"),
                           days == "-" ? "-" : days + " days"});
        }
    }
    std::string out = table.render() + field_text(plan, "summary") + "\n";
    if (plan.contains("what_if") && plan["what_if"].is_array() && !plan["what_if"].empty()) {
        std::vector<std::string> changes;
        for (const auto& change : plan["what_if"])
            if (change.is_string()) changes.push_back(change.get<std::string>());
        out += fmt::format("what if: {}\n", fmt::join(changes, ", "));
    }
    const json history = plan.value("history", json::object());
    out += fmt::format("from {} s of history ({} samples); per VM, the 95th percentile of its use:\n",
                       number(history, "seconds", 0), number(history, "samples", 0));
    Table vms({"VM", "VCPUS", "MEMORY", "RUNNING", "CPU P95", "MEMORY P95"});
    if (plan.contains("vms") && plan["vms"].is_array()) {
        for (const auto& vm : plan["vms"]) {
            vms.add_row({field_text(vm, "name"), number(vm, "vcpus", 0), number(vm, "memory_mib", 0) + "M",
                         vm.value("running", false) ? "yes" : "no", number(vm, "cpu_p95"),
                         number(vm, "memory_p95_mib", 0) == "-" ? "-" : number(vm, "memory_p95_mib", 0) + "M"});
        }
    }
    out += vms.render();
    if (plan.contains("notes") && plan["notes"].is_array())
        for (const auto& note : plan["notes"])
            if (note.is_string()) out += "note: " + note.get<std::string>() + "\n";
    return out;
}

}  // namespace corral::cli
