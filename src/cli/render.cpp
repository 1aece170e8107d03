#include "cli/render.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <fmt/format.h>

#include "cli/capacity_plan.h"
#include "cli/size.h"
#include "cli/network_commands.h"
#include "cli/alarm_commands.h"
#include "cli/backup_commands.h"
#include "cli/security_group_commands.h"
#include "cli/snapshot_tree.h"
#include "cli/table.h"

namespace corral::cli {

namespace {

using json = nlohmann::json;

/// A field as text: strings as they are, numbers and booleans printed, absent or null as `-`.
std::string text(const json& object, const char* key) {
    if (!object.is_object() || !object.contains(key)) return "-";
    const json& value = object[key];
    if (value.is_null()) return "-";
    if (value.is_string()) return value.get<std::string>().empty() ? "-" : value.get<std::string>();
    if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
    return value.dump();
}

std::string bytes(const json& object, const char* key) {
    if (!object.is_object() || !object.contains(key) || !object[key].is_number()) return "-";
    const double value = object[key].get<double>();
    return value < 0 ? "-" : format_size(static_cast<std::uint64_t>(value));
}

std::string mib(const json& object, const char* key) {
    if (!object.is_object() || !object.contains(key) || !object[key].is_number_unsigned()) return text(object, key);
    return format_size(object[key].get<std::uint64_t>() * 1024 * 1024);
}

std::string join(const std::vector<std::string>& parts, const char* separator = ", ") {
    std::string out;
    for (const auto& part : parts) {
        if (!out.empty()) out += separator;
        out += part;
    }
    return out.empty() ? "-" : out;
}

std::string disks(const json& vm) {
    std::vector<std::string> parts;
    if (vm.contains("disks") && vm["disks"].is_array())
        for (const auto& disk : vm["disks"]) {
            std::string part = text(disk, "pool") + "/" + text(disk, "volume");
            if (disk.value("readonly", false)) part += ":ro";
            parts.push_back(part);
        }
    return join(parts, ",");
}

std::string nics(const json& vm) {
    std::vector<std::string> parts;
    if (vm.contains("nics") && vm["nics"].is_array())
        for (const auto& nic : vm["nics"]) {
            std::string part = nic.contains("network") ? "network=" + text(nic, "network")
                               : nic.contains("tap")   ? "tap=" + text(nic, "tap")
                                                       : "bridge=" + text(nic, "bridge");
            if (nic.contains("mac")) part += ",mac=" + text(nic, "mac");
            if (nic.contains("ipv4") && nic["ipv4"].is_string()) part += ",ipv4=" + text(nic, "ipv4");
            // As --nic takes them: groups=web+ssh.
            if (nic.contains("groups") && nic["groups"].is_array() && !nic["groups"].empty()) {
                std::string groups;
                for (const auto& group : nic["groups"])
                    if (group.is_string()) groups += (groups.empty() ? "" : "+") + group.get<std::string>();
                part += ",groups=" + groups;
            }
            parts.push_back(part);
        }
    return join(parts);
}

/// The addresses of a VM's NICs on managed networks ("-" when none).
std::string addresses(const json& vm) {
    std::vector<std::string> parts;
    if (vm.contains("nics") && vm["nics"].is_array())
        for (const auto& nic : vm["nics"])
            for (const char* family : {"ipv4", "ipv6"})
                if (nic.contains(family) && nic[family].is_string())
                    parts.push_back(nic[family].get<std::string>());
    return parts.empty() ? "-" : join(parts, ",");
}

std::string strings(const json& object, const char* key) {
    std::vector<std::string> parts;
    if (object.contains(key) && object[key].is_array())
        for (const auto& item : object[key]) parts.push_back(item.is_string() ? item.get<std::string>() : item.dump());
    return join(parts);
}

std::string progress(const json& task) {
    if (!task.contains("progress") || !task["progress"].is_number()) return "-";
    return fmt::format("{}%", static_cast<int>(std::lround(task["progress"].get<double>() * 100)));
}

std::string state(const json& vm) {
    std::string out = text(vm, "state");
    const std::string reason = text(vm, "state_reason");
    if (reason != "-") out += " (" + reason + ")";
    return out;
}

std::string render_host(const json& host) {
    std::vector<std::pair<std::string, std::string>> fields = {
        {"hostname", text(host, "hostname")},
        {"version", text(host, "version")},
        {"cpus", text(host, "cpus")},
        {"memory", mib(host, "memory_mib")},
        {"state dir", text(host, "state_dir")},
        {"default engine", text(host, "default_engine")},
    };
    if (host.contains("engines") && host["engines"].is_object())
        for (const auto& [name, engine] : host["engines"].items())
            fields.emplace_back("engine " + name, fmt::format("{}: {}", engine.value("available", false) ? "available"
                                                                                                         : "unavailable",
                                                             text(engine, "reason")));
    if (host.contains("calibration") && host["calibration"].is_object()) {
        const json& c = host["calibration"];
        const bool measured = c.contains("ring0_loop_mips") && c["ring0_loop_mips"].is_number() &&
                              c["ring0_loop_mips"].get<double>() > 0;
        fields.emplace_back("kvm", measured ? fmt::format("{} (ring-0 loop {} M iterations/s): {}", text(c, "kvm"),
                                                          text(c, "ring0_loop_mips"), text(c, "reason"))
                                            : fmt::format("{}: {}", text(c, "kvm"), text(c, "reason")));
    }
    if (host.contains("cgroups") && host["cgroups"].is_object()) {
        const json& c = host["cgroups"];
        const std::string note = text(c, "note");
        fields.emplace_back("cgroups", note == "-" || note.empty() ? text(c, "version")
                                                                   : fmt::format("{} ({})", text(c, "version"), note));
    }
    if (host.contains("api") && host["api"].is_object()) {
        const json& api = host["api"];
        fields.emplace_back("api socket", text(api, "unix_socket"));
        fields.emplace_back("api listen", strings(api, "listen"));
        fields.emplace_back("tls fingerprint", text(api, "tls_fingerprint"));
    }
    return render_fields(fields);
}

/// Each finding as "SEVERITY  CHECK: PROBLEM" and an indented "fix: ..." line, then the counts.
std::string render_doctor(const json& report) {
    std::string out;
    const json findings = report.is_object() && report.contains("findings") ? report["findings"] : json::array();
    for (const auto& finding : findings.is_array() ? findings : json::array())
        out += fmt::format("{:<8} {}: {}\n         fix: {}\n", text(finding, "severity"), text(finding, "check"),
                           text(finding, "problem"), text(finding, "fix"));
    const json counts = report.is_object() && report.contains("counts") ? report["counts"] : json::object();
    out += fmt::format("{} errors, {} warnings, {} notes\n", text(counts, "error"), text(counts, "warning"),
                       text(counts, "info"));
    return out;
}

/// RESOURCE HOST ALLOWED ALLOCATED USED FREE, one row each for vCPUs and memory, and the policy.
std::string render_capacity(const json& capacity) {
    Table table({"RESOURCE", "HOST", "ALLOWED", "ALLOCATED", "USED", "FREE"});
    auto part = [&](const char* key) { return capacity.is_object() && capacity.contains(key) ? capacity[key] : json::object(); };
    const json vcpus = part("vcpus");
    table.add_row({"vcpus", text(vcpus, "host"), text(vcpus, "allowed"), text(vcpus, "allocated"),
                   text(vcpus, "used") + (text(vcpus, "used") == "-" ? "" : " busy"), text(vcpus, "free")});
    const json memory = part("memory_mib");
    table.add_row({"memory", mib(memory, "host"), mib(memory, "allowed"), mib(memory, "allocated"), mib(memory, "used"),
                   mib(memory, "free")});
    const json policy = part("policy");
    return table.render() + fmt::format("policy: {} vCPUs per host CPU, {}% of the host's memory\n",
                                        text(policy, "vcpus_per_cpu"), text(policy, "memory_percent"));
}

/// "3 d 4 h", "2 h 5 min", "5 min 3 s", "42 s"; "-" without a number.
std::string duration(const json& object, const char* key) {
    if (!object.is_object() || !object.contains(key) || !object[key].is_number_integer()) return "-";
    const std::int64_t seconds = std::max<std::int64_t>(0, object[key].get<std::int64_t>());
    const std::int64_t days = seconds / 86400, hours = seconds % 86400 / 3600, minutes = seconds % 3600 / 60;
    if (days > 0) return fmt::format("{} d {} h", days, hours);
    if (hours > 0) return fmt::format("{} h {} min", hours, minutes);
    if (minutes > 0) return fmt::format("{} min {} s", minutes, seconds % 60);
    return fmt::format("{} s", seconds);
}

/// The restart policy, how often it restarted the VM since its last start by hand, and the last
/// crash: "on-failure, restarted 1 time (last crash: killed by signal 9 (SIGKILL))", "no".
std::string restart(const json& vm) {
    std::string out = text(vm, "restart_policy");
    const std::int64_t count = vm.is_object() && vm.contains("restarts") && vm["restarts"].is_number_integer()
                                   ? vm["restarts"].get<std::int64_t>()
                                   : 0;
    if (count > 0 || (out != "no" && out != "-"))
        out += fmt::format(", restarted {} time{}", count, count == 1 ? "" : "s");
    if (const std::string crash = text(vm, "last_crash"); crash != "-") out += " (last crash: " + crash + ")";
    return out;
}

/// The limits that are set: "cpu weight 300, cpu max 50%, memory max 768M (512M + 256M overhead), io weight
/// 200, host cpus 0-1, vcpu pins 1,0, disk 50M/s, disk 500 iops, nic 10M/s"; "none".
std::string limits(const json& vm) {
    if (!vm.is_object() || !vm.contains("limits") || !vm["limits"].is_object()) return "-";
    const json& l = vm["limits"];
    auto number = [&](const char* key) -> std::int64_t {
        return l.contains(key) && l[key].is_number_integer() ? l[key].get<std::int64_t>() : 0;
    };
    std::vector<std::string> parts;
    if (number("cpu_weight") != 0) parts.push_back(fmt::format("cpu weight {}", number("cpu_weight")));
    if (number("cpu_max_percent") != 0) parts.push_back(fmt::format("cpu max {}%", number("cpu_max_percent")));
    if (number("memory_max_mib") != 0)
        parts.push_back(fmt::format("memory max {} ({} + {} overhead)", mib(l, "memory_max_mib"), mib(vm, "memory_mib"),
                                    mib(l, "memory_overhead_mib")));
    if (number("io_weight") != 0) parts.push_back(fmt::format("io weight {}", number("io_weight")));
    if (const std::string cpus = text(l, "host_cpus"); cpus != "-" && !cpus.empty())
        parts.push_back(fmt::format("host cpus {}", cpus));
    if (const std::string pins = text(l, "vcpu_pins"); pins != "-" && !pins.empty())
        parts.push_back(fmt::format("vcpu pins {}", pins));
    if (number("disk_bytes_per_s") > 0)
        parts.push_back(fmt::format("disk {}/s", format_size(static_cast<std::uint64_t>(number("disk_bytes_per_s")))));
    if (number("disk_iops") != 0)
        parts.push_back(fmt::format("disk {} iops", number("disk_iops")));
    if (number("nic_bytes_per_s") > 0)
        parts.push_back(fmt::format("nic {}/s", format_size(static_cast<std::uint64_t>(number("nic_bytes_per_s")))));
    return parts.empty() ? "none" : join(parts);
}

/// "1024x768", or "none" without a display.
std::string display(const json& vm) {
    if (!vm.is_object() || !vm.contains("display") || !vm["display"].is_object()) return "none";
    const json& d = vm["display"];
    return fmt::format("{}x{}", text(d, "width"), text(d, "height"));
}

/// "target 128M, actual 128M (128M given back), kept" while the VM runs; "target 128M, kept,
/// applied at start" while it is down; "-" without a balloon and nothing kept.
std::string balloon(const json& b, const json& vm) {
    const bool kept = b.is_object()
                          ? b.value("kept", false)
                          : vm.is_object() && vm.contains("balloon_target_mib") && vm["balloon_target_mib"].is_number();
    if (!b.is_object() || !b.contains("actual_mib") || b["actual_mib"].is_null()) {
        if (!kept)
            return "-";
        return fmt::format("target {}, kept, applied at start",
                           b.is_object() ? mib(b, "target_mib") : mib(vm, "balloon_target_mib"));
    }
    return fmt::format("target {}, actual {} ({} given back){}", mib(b, "target_mib"), mib(b, "actual_mib"),
                       mib(b, "inflated_mib"), kept ? ", kept" : "");
}

/// "free 90M, available 120M of 230M" from the guest's balloon statistics (its own view).
std::string guest_memory(const json& b) {
    if (!b.is_object() || !b.contains("guest_memory_total_bytes") || b["guest_memory_total_bytes"].is_null())
        return "-";
    return fmt::format("free {}, available {} of {}", bytes(b, "guest_memory_free_bytes"),
                       bytes(b, "guest_memory_available_bytes"), bytes(b, "guest_memory_total_bytes"));
}

std::string render_balloon(const json& b) {
    return render_fields({{"balloon", balloon(b, json())}, {"guest", guest_memory(b)}});
}

std::string render_vm(const json& vm, GuestText guest) {
    const json no_balloon;
    std::string out = render_fields({
        {"name", text(vm, "name")},
        {"state", state(vm)},
        {"engine", text(vm, "engine")},
        {"cpus", text(vm, "vcpus")},
        {"memory", mib(vm, "memory_mib")},
        {"balloon", balloon(vm.is_object() ? vm.value("balloon", no_balloon) : no_balloon, vm)},
        // "guest", not "guest memory": a longer key would shift every other line of vm show.
        {"guest", guest_memory(vm.is_object() ? vm.value("balloon", no_balloon) : no_balloon)},
        {"image", text(vm, "image")},
        {"disks", disks(vm)},
        {"nics", nics(vm)},
        {"restart", restart(vm)},
        {"limits", limits(vm)},
        {"display", display(vm)},
        {"cmdline", text(vm, "cmdline")},
        {"pid", text(vm, "pid")},
        {"uptime", vm.contains("started_at") && vm["started_at"].is_string()
                       ? fmt::format("{} (since {})", duration(vm, "uptime_seconds"), text(vm, "started_at"))
                       : "-"},
        {"created", text(vm, "created_at")},
    });
    if (vm.contains("last_console") && vm["last_console"].is_string() && !vm["last_console"].get<std::string>().empty()) {
        std::string console = vm["last_console"].get<std::string>();
        if (guest == GuestText::Escaped) console = escape_guest_text(console);
        if (console.empty() || console.back() != '\n') console += '\n';
        out += "last console lines:\n" + console;
    }
    return out;
}

std::string render_task(const json& task) {
    return render_fields({
        {"id", text(task, "id")},
        {"kind", text(task, "kind")},
        {"target", text(task, "target")},
        {"status", text(task, "status")},
        {"progress", progress(task)},
        {"message", text(task, "message")},
        {"error", task_error(task).empty() ? "-" : task_error(task)},
        {"created", text(task, "created_at")},
        {"finished", text(task, "finished_at")},
    });
}

const json& items(const json& answer) {
    static const json k_empty = json::array();
    return answer.is_array() ? answer : k_empty;
}

/// `vm why-slow`: each cause's level and corrald's verdict, the fix on the line under it.
std::string render_why_slow(const json& answer) {
    const json diagnosis = answer.is_object() ? answer.value("diagnosis", json()) : json();
    if (!diagnosis.is_object() || !diagnosis.contains("causes") || !diagnosis["causes"].is_array())
        return "this corrald gives no diagnosis (it predates `vm why-slow`)\n";
    std::string out = fmt::format("{} over the last {} minutes:\n", text(answer, "vm"),
                                  diagnosis.value("window_seconds", 0.0) / 60);
    for (const auto& cause : diagnosis["causes"]) {
        out += fmt::format("  {:<8} {}\n", text(cause, "level"), text(cause, "verdict"));
        if (const std::string fix = text(cause, "fix"); fix != "-") out += fmt::format("  {:<8} fix: {}\n", "", fix);
    }
    return out;
}

}  // namespace

std::string task_error(const json& task) {
    if (!task.is_object() || !task.contains("error") || task["error"].is_null()) return {};
    const json& error = task["error"];
    if (error.is_string()) return error.get<std::string>();
    if (error.is_object() && error.contains("message") && error["message"].is_string())
        return error["message"].get<std::string>();
    return error.dump();
}

std::string describe_task(const json& task) {
    std::string out = fmt::format("task {} ({} {}) {}", text(task, "id"), text(task, "kind"), text(task, "target"),
                                  text(task, "status"));
    if (const std::string error = task_error(task); !error.empty()) out += ": " + error;
    return out;
}

namespace {

/// The length of the UTF-8 sequence starting at text[i] and its code point; 0 if invalid.
size_t utf8_sequence(std::string_view text, size_t i, char32_t& code) {
    const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
    const unsigned char lead = byte(i);
    size_t length = lead >= 0xF0 && lead <= 0xF4 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC2 && lead < 0xE0 ? 2 : 0;
    if (lead >= 0xF5 || length == 0 || i + length > text.size()) return 0;
    code = lead & (0x7F >> length);
    for (size_t k = 1; k < length; ++k) {
        if ((byte(i + k) & 0xC0) != 0x80) return 0;
        code = (code << 6) | (byte(i + k) & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr char32_t k_min[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < k_min[length] || (code >= 0xD800 && code <= 0xDFFF) || code > 0x10FFFF) return 0;
    return length;
}

}  // namespace

std::string escape_guest_text(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size();) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c == '\n' || c == '\t' || (c >= 0x20 && c < 0x7F)) {
            out += static_cast<char>(c);
            ++i;
        } else if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') {
            ++i;  // CR LF, as serial consoles end lines: the LF alone says it
        } else if (c < 0x20 || c == 0x7F) {
            out += '^';
            out += static_cast<char>(c ^ 0x40);  // ESC -> ^[, BEL -> ^G, DEL -> ^?
            ++i;
        } else {
            char32_t code = 0;
            const size_t length = utf8_sequence(text, i, code);
            if (length == 0) {
                out += fmt::format("\\x{:02x}", c);
                ++i;
            } else if (code >= 0x80 && code <= 0x9F) {
                out += fmt::format("\\u{:04x}", static_cast<unsigned>(code));  // C1: 8-bit CSI, OSC, ...
                i += length;
            } else {
                out.append(text.substr(i, length));
                i += length;
            }
        }
    }
    return out;
}

std::string render(View view, const json& answer, GuestText guest) {
    switch (view) {
    case View::None: return {};
    case View::Host: return render_host(answer);
    case View::Capacity: return render_capacity(answer);
    case View::CapacityPlan: return render_capacity_plan(answer);
    case View::Doctor: return render_doctor(answer);
    case View::Vm: return render_vm(answer, guest);
    case View::Balloon: return render_balloon(answer);
    case View::Task: return render_task(answer);
    case View::Deleted: {
        std::string out = "deleted " + text(answer, "deleted");
        if (answer.contains("volumes") && answer["volumes"].is_array() && !answer["volumes"].empty())
            out += " and its volumes " + strings(answer, "volumes");
        return out + "\n";
    }
    case View::VmTable: {
        Table table({"NAME", "STATE", "ENGINE", "CPUS", "MEMORY", "DISKS", "ADDRESSES"});
        for (const auto& vm : items(answer))
            table.add_row({text(vm, "name"), text(vm, "state"), text(vm, "engine"), text(vm, "vcpus"),
                           mib(vm, "memory_mib"), disks(vm), addresses(vm)});
        return table.render();
    }
    case View::PoolTable: {
        Table table({"NAME", "DRIVER", "CAPACITY", "ALLOCATED", "AVAILABLE", "VOLUMES", "PATH"});
        for (const auto& pool : items(answer))
            table.add_row({text(pool, "name"), text(pool, "driver"), bytes(pool, "capacity_bytes"),
                           bytes(pool, "allocation_bytes"), bytes(pool, "available_bytes"), text(pool, "volumes"),
                           text(pool, "path")});
        return table.render();
    }
    case View::Pool:
        return render_fields({
            {"name", text(answer, "name")},
            {"driver", text(answer, "driver")},
            {"path", text(answer, "path")},
            {"capacity", bytes(answer, "capacity_bytes")},
            {"allocated", bytes(answer, "allocation_bytes")},
            {"available", bytes(answer, "available_bytes")},
            {"volumes", text(answer, "volumes")},
        });
    case View::VolumeTable: {
        Table table({"POOL", "NAME", "FORMAT", "SIZE", "ALLOCATED", "BACKING", "USED BY"});
        for (const auto& volume : items(answer)) {
            const json backing = volume.value("backing", json());
            table.add_row({text(volume, "pool"), text(volume, "name"), text(volume, "format"),
                           bytes(volume, "size_bytes"), bytes(volume, "allocation_bytes"),
                           backing.is_object() ? text(backing, "pool") + "/" + text(backing, "volume") : "-",
                           strings(volume, "used_by")});
        }
        return table.render();
    }
    case View::Volume: {
        const json backing = answer.value("backing", json());
        return render_fields({
            {"pool", text(answer, "pool")},
            {"name", text(answer, "name")},
            {"format", text(answer, "format")},
            {"size", bytes(answer, "size_bytes")},
            {"allocated", bytes(answer, "allocation_bytes")},
            {"backing", backing.is_object() ? text(backing, "pool") + "/" + text(backing, "volume") : "-"},
            {"used by", strings(answer, "used_by")},
            {"clones", strings(answer, "clones")},
        });
    }
    case View::ImageTable: {
        Table table({"NAME", "POOL", "ROOT VOLUME", "DESCRIPTION"});
        for (const auto& image : items(answer))
            table.add_row({text(image, "name"), text(image, "pool"), text(image, "root_volume"),
                           text(image, "description")});
        return table.render();
    }
    case View::Image:
        return render_fields({
            {"name", text(answer, "name")},
            {"pool", text(answer, "pool")},
            {"kernel", text(answer, "kernel")},
            {"initrd", text(answer, "initrd")},
            {"root volume", text(answer, "root_volume")},
            {"cmdline", text(answer, "cmdline")},
            {"description", text(answer, "description")},
        });
    case View::TokenTable: {
        Table table({"NAME", "CREATED", "LAST USED"});
        for (const auto& token : items(answer))
            table.add_row({text(token, "name"), text(token, "created_at"), text(token, "last_used_at")});
        return table.render();
    }
    case View::TokenSecret: return text(answer, "token") + "\n";
    case View::SnapshotTable: {
        // A tree, as `qm listsnapshot` draws it: children under their parent, the current one marked.
        Table table({"NAME", "KIND", "STATUS", "SIZE", "CREATED", "DESCRIPTION"});
        for (const auto& [snapshot, depth] : snapshot_tree(items(answer))) {
            std::string name = text(*snapshot, "name");
            if (depth > 0) name = std::string(2 * (depth - 1), ' ') + "`- " + name;
            if (snapshot->value("current", false)) name += " (current)";
            table.add_row({name, text(*snapshot, "kind"), text(*snapshot, "status"), bytes(*snapshot, "size_bytes"),
                           text(*snapshot, "created_at"), text(*snapshot, "description")});
        }
        return table.render();
    }
    case View::WhySlow: return render_why_slow(answer);
    case View::Snapshot:
        return render_fields({
            {"vm", text(answer, "vm")},
            {"name", text(answer, "name")},
            {"kind", text(answer, "kind")},
            {"engine", text(answer, "engine")},
            {"status", text(answer, "status")},
            {"size", bytes(answer, "size_bytes")},
            {"created", text(answer, "created_at")},
            {"parent", answer.value("parent", nlohmann::json()).is_string() ? text(answer, "parent") : "none"},
            {"current", answer.value("current", false) ? "yes" : "no"},
            {"description", text(answer, "description")},
        });
    case View::NetworkTable:
    case View::Network:
    case View::LeaseTable: return render_network_view(view, answer);
    case View::SecurityGroupTable:
    case View::SecurityGroup:
    case View::Trace: return render_security_group_view(view, answer);
    case View::BackupRepoTable:
    case View::BackupRepo:
    case View::BackupTable:
    case View::Backup:
    case View::BackupPruned:
    case View::BackupScheduleTable: return render_backup_view(view, answer);
    case View::AlarmTable:
    case View::Alarm: return render_alarm_view(view, answer);
    case View::TaskTable: {
        Table table({"ID", "KIND", "TARGET", "STATUS", "PROGRESS", "MESSAGE"});
        for (const auto& task : items(answer))
            table.add_row({text(task, "id"), text(task, "kind"), text(task, "target"), text(task, "status"),
                           progress(task), text(task, "message")});
        return table.render();
    }
    }
    return {};
}

int doctor_exit_code(const json& report) {
    auto count = [&](const char* severity) {
        return report.is_object() && report.contains("counts") && report["counts"].value(severity, 0) > 0;
    };
    return count("error") ? 6 : count("warning") ? 5 : 0;
}

}  // namespace corral::cli
