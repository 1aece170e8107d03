// corral-img: create, inspect, check, convert, snapshot, resize, map and benchmark disk images.
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "base/size.h"
#include "storage/image.h"
#include "storage/qcow2/qcow2_image.h"
#include "storage/raw_device.h"

using namespace corral;
using namespace corral::storage;
using json = nlohmann::ordered_json;

namespace {

constexpr const char* k_usage = R"(usage: corral-img COMMAND [options]

commands:
  create [-f raw|qcow2] [-b BACKING [-F raw|qcow2]] [-o OPTIONS] FILE [SIZE]
      OPTIONS: cluster_size=SIZE, compression_type=zlib|zstd, compat=0.10|1.1
  info [--json] [-f FMT] FILE
  check [--repair] [--json] FILE
  convert [-f FMT] [-O raw|qcow2] [-c] [-o OPTIONS] [-p] SRC DST
  snapshot -c NAME | -l | -a NAME | -d NAME  FILE
  resize FILE [+]SIZE
  map [--json] [-f FMT] FILE
  bench [-f FMT] [-c COUNT] [-s BUFSIZE] [-S STEP] [-o OFFSET] [-w] FILE
      sequential requests from OFFSET advancing by STEP (wrapping), like qemu-img bench;
      a large odd STEP gives a scattered ("random") pattern.

sizes take K, M, G, T suffixes (binary).

exit codes:
  0  success
  1  failure or bad arguments (the message names the argument and the allowed values)
  2  check: the image has corruptions
  3  check: the image has leaked clusters only
)";

struct Args {
    std::vector<std::string> positional;
    std::vector<std::pair<std::string, std::string>> options;
};

struct UsageError {
    std::string message;
};

/// Parses argv with a fixed set of flags that take a value; everything else starting with '-' is a switch.
Result<Args> parse_args(int argc, char** argv, int first, const std::vector<std::string>& with_value,
                        const std::vector<std::string>& switches) {
    Args args;
    for (int i = first; i < argc; ++i) {
        std::string a = argv[i];
        if (a.size() > 1 && a[0] == '-') {
            if (std::find(with_value.begin(), with_value.end(), a) != with_value.end()) {
                if (i + 1 >= argc) return fail(fmt::format("option {} needs a value", a));
                args.options.push_back({a, argv[++i]});
            } else if (std::find(switches.begin(), switches.end(), a) != switches.end()) {
                args.options.push_back({a, ""});
            } else {
                std::string allowed;
                for (auto& o : with_value) allowed += (allowed.empty() ? "" : ", ") + o + " VALUE";
                for (auto& o : switches) allowed += (allowed.empty() ? "" : ", ") + o;
                return fail(fmt::format("unknown option '{}' (allowed: {})", a, allowed.empty() ? "none" : allowed));
            }
        } else {
            args.positional.push_back(a);
        }
    }
    return args;
}

std::optional<std::string> option(const Args& a, const std::string& name) {
    std::optional<std::string> v;
    for (auto& [k, val] : a.options)
        if (k == name) v = val;
    return v;
}
bool has(const Args& a, const std::string& name) { return option(a, name).has_value(); }

Result<void> need_positional(const Args& a, size_t min, size_t max, const char* usage) {
    if (a.positional.size() < min || a.positional.size() > max)
        return fail(fmt::format("expected {} (got {} arguments)", usage, a.positional.size()));
    return {};
}

std::string human_size(uint64_t bytes) {
    const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    double v = double(bytes);
    int u = 0;
    while (v >= 1024 && u < 6) {
        v /= 1024;
        ++u;
    }
    if (u == 0) return fmt::format("{} B", bytes);
    return fmt::format("{:.3g} {}", v, units[u]);
}

Result<std::optional<ImageFormat>> format_option(const Args& a, const std::string& name) {
    auto v = option(a, name);
    if (!v) return std::optional<ImageFormat>{};
    ImageFormat f = TRY_CONTEXT(parse_format(*v), name);
    return std::optional<ImageFormat>(f);
}

Result<void> apply_create_options(const std::string& text, ImageCreateOptions& o) {
    size_t start = 0;
    while (start <= text.size()) {
        size_t comma = text.find(',', start);
        std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        start = comma == std::string::npos ? text.size() + 1 : comma + 1;
        if (item.empty()) continue;
        auto eq = item.find('=');
        std::string key = item.substr(0, eq), value = eq == std::string::npos ? "" : item.substr(eq + 1);
        if (key == "cluster_size") {
            uint64_t cluster_size = TRY_CONTEXT(parse_size(value), "cluster_size");
            // Not truncated into a valid-looking value: qcow2 checks the range (512 to 2M).
            if (cluster_size > UINT32_MAX) return fail(fmt::format("cluster_size '{}' is too large", value));
            o.cluster_size = uint32_t(cluster_size);
        } else if (key == "compression_type") {
            if (value == "zlib") o.compression = qcow2::CompressionType::Zlib;
            else if (value == "zstd") o.compression = qcow2::CompressionType::Zstd;
            else return fail(fmt::format("compression_type '{}' is not allowed (allowed: zlib, zstd)", value));
        } else if (key == "compat") {
            if (value == "0.10") o.version = 2;
            else if (value == "1.1" || value == "v3") o.version = 3;
            else return fail(fmt::format("compat '{}' is not allowed (allowed: 0.10, 1.1)", value));
        } else {
            return fail(fmt::format("unknown -o option '{}' (allowed: cluster_size, compression_type, compat)", key));
        }
    }
    return {};
}

Result<int> cmd_create(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, 2, {"-f", "-b", "-F", "-o"}, {}));
    TRY_VOID(need_positional(a, 1, 2, "FILE [SIZE]"));
    ImageCreateOptions o;
    if (auto f = TRY(format_option(a, "-f"))) o.format = *f;
    if (auto b = option(a, "-b")) o.backing_file = *b;
    o.backing_format = TRY(format_option(a, "-F"));
    if (o.backing_format && o.backing_file.empty()) return fail("-F needs -b BACKING");
    if (auto opts = option(a, "-o")) TRY_VOID(apply_create_options(*opts, o));
    if (a.positional.size() == 2) o.size = TRY_CONTEXT(parse_size(a.positional[1]), "SIZE");
    TRY_VOID(create_image(a.positional[0], o));
    return 0;
}

json snapshot_json(const qcow2::Snapshot& s) {
    return json{{"id", s.id},
                {"name", s.name},
                {"vm-state-size", s.vm_state_size},
                {"date-sec", s.date_sec},
                {"date-nsec", s.date_nsec},
                {"vm-clock-sec", s.vm_clock_nsec / 1000000000},
                {"vm-clock-nsec", s.vm_clock_nsec % 1000000000},
                {"icount", s.icount && *s.icount != UINT64_MAX ? json(*s.icount) : json(nullptr)}};
}

Result<json> image_json(const std::string& path, BlockDevice& dev) {
    json j;
    j["virtual-size"] = dev.size();
    j["filename"] = path;
    File const* file = nullptr;
    if (auto* q = dynamic_cast<qcow2::Qcow2Image*>(&dev)) {
        file = &q->file();
        const auto& h = q->header();
        j["cluster-size"] = q->cluster_size();
        j["format"] = "qcow2";
        j["actual-size"] = TRY(file->allocated_bytes());
        if (!h.backing_file.empty()) {
            j["backing-filename"] = h.backing_file;
            j["full-backing-filename"] = resolve_backing_path(path, h.backing_file);
            if (h.backing_format) j["backing-filename-format"] = *h.backing_format;
        }
        if (!q->snapshots().empty()) {
            json snaps = json::array();
            for (auto& s : q->snapshots()) snaps.push_back(snapshot_json(s));
            j["snapshots"] = snaps;
        }
        json data{{"compat", h.version >= 3 ? "1.1" : "0.10"},
                  {"compression-type", h.compression_type == qcow2::CompressionType::Zstd ? "zstd" : "zlib"}};
        if (h.version >= 3) {
            data["lazy-refcounts"] = bool(h.compatible_features & qcow2::k_compat_lazy_refcounts);
            data["refcount-bits"] = 1u << h.refcount_order;
            data["corrupt"] = bool(h.incompatible_features & qcow2::k_incompat_corrupt);
            data["extended-l2"] = h.extended_l2();
        }
        j["format-specific"] = json{{"type", "qcow2"}, {"data", data}};
        j["dirty-flag"] = bool(h.incompatible_features & qcow2::k_incompat_dirty);
    } else if (auto* r = dynamic_cast<RawDevice*>(&dev)) {
        j["format"] = "raw";
        j["actual-size"] = TRY(r->file().allocated_bytes());
        j["dirty-flag"] = false;
    }
    return j;
}

Result<int> cmd_info(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, 2, {"-f", "--output"}, {"--json", "--backing-chain"}));
    TRY_VOID(need_positional(a, 1, 1, "FILE"));
    bool as_json = has(a, "--json") || option(a, "--output") == std::optional<std::string>("json");
    const std::string path = a.positional[0];
    auto dev = TRY(open_image(path, ImageOpenOptions{.access = Access::ReadOnly, .format = TRY(format_option(a, "-f"))}));
    json j = TRY(image_json(path, *dev));
    json chain = json::array();
    {
        std::string cur_path = path;
        BlockDevice* cur = dev.get();
        while (auto* q = dynamic_cast<qcow2::Qcow2Image*>(cur)) {
            if (!q->backing()) break;
            cur_path = resolve_backing_path(cur_path, q->header().backing_file);
            cur = q->backing();
            chain.push_back(json{{"filename", cur_path}, {"format", cur->format_name()}, {"virtual-size", cur->size()}});
        }
    }
    if (!chain.empty()) j["backing-chain"] = chain;
    if (as_json) {
        fmt::print("{}\n", j.dump(4));
        return 0;
    }
    fmt::print("image: {}\nfile format: {}\nvirtual size: {} ({} bytes)\ndisk size: {}\n", path,
               j["format"].get<std::string>(), human_size(dev->size()), dev->size(),
               human_size(j["actual-size"].get<uint64_t>()));
    if (j.contains("cluster-size")) fmt::print("cluster_size: {}\n", j["cluster-size"].get<uint64_t>());
    if (j.contains("backing-filename")) {
        fmt::print("backing file: {} (actual path: {})\n", j["backing-filename"].get<std::string>(),
                   j["full-backing-filename"].get<std::string>());
        if (j.contains("backing-filename-format"))
            fmt::print("backing file format: {}\n", j["backing-filename-format"].get<std::string>());
        std::string line = path;
        for (auto& c : chain) line += " -> " + c["filename"].get<std::string>();
        fmt::print("backing chain: {}\n", line);
    }
    if (j.contains("snapshots")) {
        fmt::print("Snapshot list:\n{:<10}{:<20}{:>10}{:>21}{:>15}\n", "ID", "TAG", "VM SIZE", "DATE", "VM CLOCK");
        for (auto& s : j["snapshots"]) {
            time_t t = time_t(s["date-sec"].get<uint64_t>());
            char date[32];
            strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", localtime(&t));
            uint64_t clock = s["vm-clock-sec"].get<uint64_t>();
            fmt::print("{:<10}{:<20}{:>10}{:>21}{:>6}:{:02}:{:02}\n", s["id"].get<std::string>(),
                       s["name"].get<std::string>(), human_size(s["vm-state-size"].get<uint64_t>()), date,
                       clock / 3600, clock / 60 % 60, clock % 60);
        }
    }
    if (j.contains("format-specific")) {
        fmt::print("Format specific information:\n");
        for (auto& [k, v] : j["format-specific"]["data"].items()) fmt::print("    {}: {}\n", k, v.is_string() ? v.get<std::string>() : v.dump());
    }
    return 0;
}

Result<int> cmd_check(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, 2, {"-f", "--output", "-r"}, {"--repair", "--json"}));
    TRY_VOID(need_positional(a, 1, 1, "FILE"));
    bool repair = has(a, "--repair") || has(a, "-r");
    bool as_json = has(a, "--json") || option(a, "--output") == std::optional<std::string>("json");
    auto dev = TRY(open_image(a.positional[0], ImageOpenOptions{.access = repair ? Access::ReadWrite : Access::ReadOnly,
                                                                .format = TRY(format_option(a, "-f"))}));
    auto* q = dynamic_cast<qcow2::Qcow2Image*>(dev.get());
    if (!q) {
        fmt::print("This image format ({}) does not support checks\n", dev->format_name());
        return 0;
    }
    auto r = TRY(q->check(repair ? qcow2::Repair::Yes : qcow2::Repair::No));
    if (as_json) {
        json j{{"filename", a.positional[0]}, {"format", "qcow2"}, {"check-errors", r.check_errors},
               {"corruptions", r.corruptions}, {"leaks", r.leaks}, {"image-end-offset", r.image_end_offset},
               {"allocated-clusters", r.allocated_clusters}, {"total-clusters", r.total_clusters}};
        if (repair) {
            j["corruptions-fixed"] = r.corruptions_fixed;
            j["leaks-fixed"] = r.leaks_fixed;
        }
        fmt::print("{}\n", j.dump(4));
    } else {
        for (auto& m : r.messages) fmt::print(stderr, "{}\n", m);
        if (repair && (r.corruptions_fixed || r.leaks_fixed))
            fmt::print("The following inconsistencies were found and repaired:\n\n    {} leaked clusters\n    {} "
                       "corruptions\n\n", r.leaks_fixed, r.corruptions_fixed);
        if (!r.corruptions && !r.leaks && !r.check_errors) fmt::print("No errors were found on the image.\n");
        if (r.corruptions) fmt::print("\n{} errors were found on the image.\nData may be corrupted, or further writes to the image may corrupt it.\n", r.corruptions);
        if (r.leaks) fmt::print("\n{} leaked clusters were found on the image.\nThis means waste of disk space, but no harm to data.\n", r.leaks);
        if (r.total_clusters)
            fmt::print("{}/{} = {:.2f}% allocated\n", r.allocated_clusters, r.total_clusters,
                       100.0 * double(r.allocated_clusters) / double(r.total_clusters));
        fmt::print("Image end offset: {}\n", r.image_end_offset);
    }
    if (r.corruptions) return 2;
    if (r.leaks) return 3;
    if (r.check_errors) return 1;
    return 0;
}

bool all_zero(const uint8_t* p, size_t n) {
    if (n == 0) return true;
    return p[0] == 0 && std::memcmp(p, p + 1, n - 1) == 0;
}

Result<int> cmd_convert(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, 2, {"-f", "-O", "-o"}, {"-c", "-p"}));
    TRY_VOID(need_positional(a, 2, 2, "SRC DST"));
    ImageCreateOptions o;
    o.format = ImageFormat::Raw;
    if (auto f = TRY(format_option(a, "-O"))) o.format = *f;
    if (auto opts = option(a, "-o")) TRY_VOID(apply_create_options(*opts, o));
    bool compress = has(a, "-c");
    if (compress && o.format != ImageFormat::Qcow2) return fail("-c (compress) needs -O qcow2");
    bool progress = has(a, "-p") || isatty(STDERR_FILENO);
    auto src = TRY(open_image(a.positional[0], ImageOpenOptions{.access = Access::ReadOnly, .format = TRY(format_option(a, "-f"))}));
    const std::string& dst_path = a.positional[1];
    o.size = src->size();
    ::unlink(dst_path.c_str());
    TRY_VOID(create_image(dst_path, o));
    auto dst = TRY(open_image(dst_path, ImageOpenOptions{.access = Access::ReadWrite, .format = o.format}));
    auto* qdst = dynamic_cast<qcow2::Qcow2Image*>(dst.get());
    const uint64_t unit = qdst ? qdst->cluster_size() : 65536;
    const uint64_t chunk = std::max<uint64_t>(unit, 2u << 20) / unit * unit;
    std::vector<uint8_t> buffer(chunk);
    const uint64_t total = src->size();
    int last_percent = -1;
    for (uint64_t pos = 0; pos < total;) {
        Extent e = TRY(src->block_status(pos, std::min<uint64_t>(chunk, total - pos)));
        uint64_t n = std::max<uint64_t>(e.length, 1);
        if (e.kind == ExtentKind::Data) {
            auto buf = std::span(buffer).subspan(0, n);
            TRY_VOID(src->read_at(pos, buf));
            // Write in destination clusters, skipping the ones that are all zeros.
            for (uint64_t at = 0; at < n;) {
                uint64_t in = (pos + at) % unit;
                uint64_t len = std::min<uint64_t>(n - at, unit - in);
                if (!all_zero(&buf[at], len)) {
                    if (compress && in == 0 && (len == unit || pos + at + len == total))
                        TRY_VOID(qdst->write_compressed(pos + at, buf.subspan(at, len)));
                    else
                        TRY_VOID(dst->write_at(pos + at, buf.subspan(at, len)));
                }
                at += len;
            }
        }
        pos += n;
        if (progress) {
            int percent = int(100.0 * double(pos) / double(total));
            if (percent != last_percent) {
                last_percent = percent;
                int bars = percent / 2;
                fmt::print(stderr, "\r    ({:3}/100%) [{}{}]", percent, std::string(size_t(bars), '#'),
                           std::string(size_t(50 - bars), ' '));
            }
        }
    }
    if (progress) fmt::print(stderr, "\n");
    TRY_VOID(dst->flush());
    return 0;
}

Result<int> cmd_snapshot(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, 2, {"-c", "-a", "-d"}, {"-l"}));
    int actions = has(a, "-c") + has(a, "-a") + has(a, "-d") + has(a, "-l");
    if (actions != 1) return fail("snapshot needs exactly one of -c NAME, -l, -a NAME, -d NAME");
    TRY_VOID(need_positional(a, 1, 1, "FILE"));
    bool list = has(a, "-l");
    auto dev = TRY(open_image(a.positional[0], ImageOpenOptions{.access = list ? Access::ReadOnly : Access::ReadWrite, .format = std::nullopt}));
    auto* q = dynamic_cast<qcow2::Qcow2Image*>(dev.get());
    if (!q) return fail(fmt::format("'{}' is {}; snapshots need qcow2", a.positional[0], dev->format_name()));
    if (list) {
        fmt::print("Snapshot list:\n{:<10}{:<20}{:>10}{:>21}\n", "ID", "TAG", "VM SIZE", "DATE");
        for (auto& s : q->snapshots()) {
            time_t t = time_t(s.date_sec);
            char date[32];
            strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S", localtime(&t));
            fmt::print("{:<10}{:<20}{:>10}{:>21}\n", s.id, s.name, human_size(s.vm_state_size), date);
        }
        return 0;
    }
    if (auto n = option(a, "-c")) TRY_VOID(q->create_snapshot(*n));
    if (auto n = option(a, "-a")) TRY_VOID(q->revert_snapshot(*n));
    if (auto n = option(a, "-d")) TRY_VOID(q->delete_snapshot(*n));
    TRY_VOID(q->flush());
    return 0;
}

Result<int> cmd_resize(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, 2, {"-f"}, {}));
    TRY_VOID(need_positional(a, 2, 2, "FILE SIZE"));
    auto dev = TRY(open_image(a.positional[0], ImageOpenOptions{.access = Access::ReadWrite, .format = TRY(format_option(a, "-f"))}));
    std::string text = a.positional[1];
    uint64_t size;
    if (!text.empty() && text[0] == '+') {
        uint64_t grow = TRY_CONTEXT(parse_size(text.substr(1)), "SIZE");
        if (grow > UINT64_MAX - dev->size()) return fail(fmt::format("size '{}' is too large", text));
        size = dev->size() + grow;
    } else if (!text.empty() && text[0] == '-') {
        return fail("shrinking is not supported (SIZE must not start with '-')");
    } else {
        size = TRY_CONTEXT(parse_size(text), "SIZE");
    }
    TRY_VOID(dev->resize(size));
    TRY_VOID(dev->flush());
    fmt::print("Image resized.\n");
    return 0;
}

Result<int> cmd_map(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, 2, {"-f", "--output"}, {"--json"}));
    TRY_VOID(need_positional(a, 1, 1, "FILE"));
    bool as_json = has(a, "--json") || option(a, "--output") == std::optional<std::string>("json");
    auto dev = TRY(open_image(a.positional[0], ImageOpenOptions{.access = Access::ReadOnly, .format = TRY(format_option(a, "-f"))}));
    json out = json::array();
    std::optional<Extent> cur;
    auto emit = [&](const Extent& e) {
        json j{{"start", e.offset}, {"length", e.length}, {"depth", e.depth},
               {"present", e.kind != ExtentKind::Unallocated}, {"zero", e.kind != ExtentKind::Data},
               {"data", e.kind == ExtentKind::Data}};
        if (e.has_host_offset && e.kind == ExtentKind::Data) j["offset"] = e.host_offset;
        out.push_back(j);
    };
    for (uint64_t pos = 0; pos < dev->size();) {
        Extent e = TRY(dev->block_status(pos, dev->size() - pos));
        if (e.length == 0) break;
        if (cur && cur->kind == e.kind && cur->depth == e.depth && cur->has_host_offset == e.has_host_offset &&
            !e.compressed && !cur->compressed && (!e.has_host_offset || cur->host_offset + cur->length == e.host_offset)) {
            cur->length += e.length;
        } else {
            if (cur) emit(*cur);
            cur = e;
        }
        pos += e.length;
    }
    if (cur) emit(*cur);
    if (as_json) {
        fmt::print("{}\n", out.dump(4));
        return 0;
    }
    fmt::print("{:<20}{:<20}{:<20}{}\n", "Offset", "Length", "Mapped to", "File");
    for (auto& e : out)
        if (e["data"].get<bool>())
            fmt::print("{:<#20x}{:<#20x}{:<20}{}\n", e["start"].get<uint64_t>(), e["length"].get<uint64_t>(),
                       e.contains("offset") ? fmt::format("{:#x}", e["offset"].get<uint64_t>()) : "compressed",
                       a.positional[0]);
    return 0;
}

Result<int> cmd_bench(int argc, char** argv) {
    Args a = TRY(parse_args(argc, argv, 2, {"-f", "-c", "-s", "-S", "-o", "-t", "-d"}, {"-w", "-n"}));
    TRY_VOID(need_positional(a, 1, 1, "FILE"));
    bool write = has(a, "-w");
    uint64_t count = option(a, "-c") ? TRY_CONTEXT(parse_size(*option(a, "-c")), "-c") : 75000;
    uint64_t bufsize = option(a, "-s") ? TRY_CONTEXT(parse_size(*option(a, "-s")), "-s") : 4096;
    uint64_t step = option(a, "-S") ? TRY_CONTEXT(parse_size(*option(a, "-S")), "-S") : bufsize;
    uint64_t offset = option(a, "-o") ? TRY_CONTEXT(parse_size(*option(a, "-o")), "-o") : 0;
    if (bufsize == 0 || bufsize > (64u << 20)) return fail("-s must be between 1 and 64M");
    auto dev = TRY(open_image(a.positional[0], ImageOpenOptions{.access = write ? Access::ReadWrite : Access::ReadOnly,
                                                                .format = TRY(format_option(a, "-f"))}));
    if (dev->size() < bufsize) return fail("the image is smaller than one request");
    std::vector<uint8_t> buffer(bufsize, write ? 0xa5 : 0);
    fmt::print("Sending {} {} requests, {} bytes each, step {}, starting at offset {}\n", count,
               write ? "write" : "read", bufsize, step, offset);
    auto start = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < count; ++i) {
        if (offset + bufsize > dev->size()) offset = 0;
        if (write)
            TRY_VOID(dev->write_at(offset, buffer));
        else
            TRY_VOID(dev->read_at(offset, buffer));
        offset += step;
        if (dev->size() > bufsize) offset %= dev->size() - bufsize + 1;
    }
    if (write) TRY_VOID(dev->flush());
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    fmt::print("Run completed in {:.3f} seconds.\n", seconds);
    fmt::print("IOPS: {:.0f}  throughput: {:.1f} MiB/s\n", double(count) / seconds,
               double(count * bufsize) / seconds / 1048576.0);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    set_log_prefix("corral-img");
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fmt::print("{}", k_usage);
        return argc < 2 ? 1 : 0;
    }
    std::string command = argv[1];
    Result<int> result = fail("");
    if (command == "create") result = cmd_create(argc, argv);
    else if (command == "info") result = cmd_info(argc, argv);
    else if (command == "check") result = cmd_check(argc, argv);
    else if (command == "convert") result = cmd_convert(argc, argv);
    else if (command == "snapshot") result = cmd_snapshot(argc, argv);
    else if (command == "resize") result = cmd_resize(argc, argv);
    else if (command == "map") result = cmd_map(argc, argv);
    else if (command == "bench") result = cmd_bench(argc, argv);
    else {
        fmt::print(stderr, "corral-img: unknown command '{}' (allowed: create, info, check, convert, snapshot, "
                           "resize, map, bench; see --help)\n", command);
        return 1;
    }
    if (!result) {
        fmt::print(stderr, "corral-img {}: {}\n", command, result.error().describe());
        return 1;
    }
    return *result;
}
