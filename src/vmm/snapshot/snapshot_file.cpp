#include "vmm/snapshot/snapshot_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "base/private_file.h"
#include "base/unique_fd.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/memory/page_scan.h"
#include "vmm/snapshot/crc32c.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm::snapshot {
namespace {

constexpr char k_magic[8] = {'C', 'O', 'R', 'R', 'A', 'L', 'S', 'S'};
constexpr size_t k_page = 4096;
constexpr size_t k_max_config_json = 1 << 20;
constexpr uint32_t k_max_vcpus = 256;
constexpr uint32_t k_max_virtio_devices = 32;

void put_le(std::vector<uint8_t>& out, size_t at, uint64_t value, size_t size) {
    for (size_t i = 0; i < size; ++i) out[at + i] = static_cast<uint8_t>(value >> (8 * i));
}

uint64_t get_le(std::span<const uint8_t> in, size_t at, size_t size) {
    uint64_t value = 0;
    for (size_t i = 0; i < size; ++i) value |= uint64_t{in[at + i]} << (8 * i);
    return value;
}

Result<std::vector<uint8_t>> read_whole_file(const std::string& path, uint64_t max_size) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.valid()) return fail_errno(fmt::format("opening {}", path));
    struct stat info {};
    if (::fstat(fd.get(), &info) != 0) return fail_errno(fmt::format("stat {}", path));
    if (!S_ISREG(info.st_mode)) return fail(ErrorKind::Invalid, fmt::format("{} is not a regular file", path));
    if (static_cast<uint64_t>(info.st_size) > max_size)
        return fail(ErrorKind::Invalid, fmt::format("{} is {} bytes; a state file has at most {}", path,
                                                    info.st_size, max_size));
    std::vector<uint8_t> bytes(static_cast<size_t>(info.st_size));
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno(fmt::format("reading {}", path));
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    bytes.resize(done);
    return bytes;
}

Result<void> fsync_directory(const std::string& dir) {
    UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid() || ::fsync(fd.get()) != 0) return fail_errno(fmt::format("syncing {}", dir));
    return {};
}

}  // namespace

std::vector<uint8_t> encode_state_file(const SnapshotState& state) {
    StateWriter payload;
    payload.section(tag("CONF"), 1, [&](StateWriter& w) {
        std::string json = vm_config_to_json(state.config).dump();
        w.bytes(std::span(reinterpret_cast<const uint8_t*>(json.data()), json.size()));
    });
    payload.section(tag("MEMI"), 1, [&](StateWriter& w) { w.u64(state.memory_bytes); });
    state.vm.encode(payload);
    payload.u32(static_cast<uint32_t>(state.vcpus.size()));
    for (const auto& vcpu : state.vcpus) vcpu.encode(payload);
    state.serial.encode(payload);
    state.i8042.encode(payload);
    state.rtc.encode(payload);
    state.acpi.encode(payload);
    payload.u32(static_cast<uint32_t>(state.virtio.size()));
    for (const auto& device : state.virtio) device.encode(payload);
    payload.section(tag("PCIA"), 1, [&](StateWriter& w) { w.u32(state.pci_config_address); });

    const auto& body = payload.data();
    std::vector<uint8_t> file(k_state_header_size);
    std::memcpy(file.data(), k_magic, sizeof k_magic);
    put_le(file, 8, k_format_version, 4);
    put_le(file, 12, 0, 4);
    put_le(file, 16, body.size(), 8);
    put_le(file, 24, crc32c(body), 4);
    put_le(file, 28, 0, 4);
    file.insert(file.end(), body.begin(), body.end());
    return file;
}

Result<SnapshotState> decode_state_file(std::span<const uint8_t> bytes) {
    auto refuse = [](std::string why) { return fail(ErrorKind::Invalid, "snapshot state file: " + why); };
    if (bytes.size() < k_state_header_size) return refuse(fmt::format("truncated: {} bytes, the header alone is {}",
                                                                      bytes.size(), k_state_header_size));
    if (std::memcmp(bytes.data(), k_magic, sizeof k_magic) != 0) return refuse("not a Corral snapshot (bad magic)");
    uint64_t version = get_le(bytes, 8, 4);
    if (version != k_format_version)
        return refuse(fmt::format("format version {}; this corral-vmm reads version {}", version, k_format_version));
    if (get_le(bytes, 12, 4) != 0) return refuse("unknown flags set");
    uint64_t length = get_le(bytes, 16, 8);
    if (length != bytes.size() - k_state_header_size)
        return refuse(fmt::format("the header announces {} bytes of state, the file has {} (truncated?)", length,
                                  bytes.size() - k_state_header_size));
    auto body = bytes.subspan(k_state_header_size);
    if (crc32c(body) != get_le(bytes, 24, 4)) return refuse("checksum mismatch (the file is corrupted)");

    StateReader reader(body, "snapshot state");
    SnapshotState state;
    std::string config_json;
    reader.section(tag("CONF"), 1, [&](StateReader& r, uint16_t) {
        auto raw = r.bytes(k_max_config_json);
        config_json.assign(raw.begin(), raw.end());
    });
    reader.section(tag("MEMI"), 1, [&](StateReader& r, uint16_t) { state.memory_bytes = r.u64(); });
    state.vm = kvm::VmState::decode(reader);
    uint32_t vcpus = reader.u32();
    if (vcpus == 0 || vcpus > k_max_vcpus) reader.fail(fmt::format("{} vCPUs; 1 to {} allowed", vcpus, k_max_vcpus));
    for (uint32_t i = 0; i < vcpus && reader.ok(); ++i) state.vcpus.push_back(kvm::VcpuState::decode(reader));
    state.serial = SerialState::decode(reader);
    state.i8042 = I8042State::decode(reader);
    state.rtc = RtcState::decode(reader);
    state.acpi = AcpiSleepState::decode(reader);
    uint32_t devices = reader.u32();
    if (devices > k_max_virtio_devices) reader.fail(fmt::format("{} virtio devices; at most {}", devices, k_max_virtio_devices));
    for (uint32_t i = 0; i < devices && reader.ok(); ++i) state.virtio.push_back(virtio::VirtioPciState::decode(reader));
    // Added after the first snapshots were written: optional, so those still restore.
    if (reader.peek_tag() == tag("PCIA"))
        reader.section(tag("PCIA"), 1, [&](StateReader& r, uint16_t) { state.pci_config_address = r.u32(); });
    TRY_VOID(reader.finish());

    auto json = nlohmann::json::parse(config_json, nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded()) return refuse("the VM configuration is not JSON");
    state.config = TRY_CONTEXT(vm_config_from_json(json), "snapshot state file: VM configuration");
    if (state.memory_bytes != state.config.memory_bytes)
        return refuse(fmt::format("memory of {} bytes, but the configuration says {}", state.memory_bytes,
                                  state.config.memory_bytes));
    if (state.vcpus.size() != state.config.cpus)
        return refuse(fmt::format("{} vCPU states for {} vCPUs", state.vcpus.size(), state.config.cpus));
    return state;
}

Result<MemoryFileStats> write_memory_file(const std::string& path, const GuestMemory& memory) {
    auto fd = TRY(create_exclusive(path, 0600));
    uint64_t size = memory.ram_size();
    // Holes everywhere first; then only the pages that hold something.
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return fail_errno(fmt::format("sizing {}", path));
    MemoryFileStats stats;
    uint64_t offset = 0;
    TouchedPages touched(memory);
    for (const auto& region : memory.regions()) {
        auto has_data = [&](uint64_t page) {
            return touched.maybe_data(region, page) && !page_is_zero(region.host + page);
        };
        for (uint64_t page = 0; page < region.size; page += k_page) {
            const uint8_t* host = region.host + page;
            size_t length = static_cast<size_t>(std::min<uint64_t>(k_page, region.size - page));
            if (length == k_page && !has_data(page)) continue;
            // Coalesce a run of non-zero pages into one write.
            uint64_t run = length;
            while (page + run < region.size && region.size - (page + run) >= k_page && has_data(page + run))
                run += k_page;
            size_t done = 0;
            while (done < run) {
                ssize_t n = ::pwrite(fd.get(), host + done, run - done, static_cast<off_t>(offset + page + done));
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) return fail_errno(fmt::format("writing {}", path));
                done += static_cast<size_t>(n);
            }
            stats.pages_written += (run + k_page - 1) / k_page;
            stats.bytes_written += run;
            page += run - k_page;  // the loop adds the last page
        }
        offset += region.size;
    }
    if (::fsync(fd.get()) != 0) return fail_errno(fmt::format("syncing {}", path));
    return stats;
}

Result<MemoryFileStats> write_snapshot(const std::string& dir, const SnapshotState& state, const GuestMemory& memory) {
    std::error_code error;
    std::filesystem::create_directories(dir, error);
    if (error) return fail(fmt::format("creating the snapshot folder {}: {}", dir, error.message()));
    std::string state_path = dir + "/" + k_state_file;
    std::string memory_path = dir + "/" + k_memory_file;
    if (::access(state_path.c_str(), F_OK) == 0 || ::access(memory_path.c_str(), F_OK) == 0)
        return fail(ErrorKind::Conflict, fmt::format("{} already holds a snapshot; choose an empty folder", dir));
    std::string memory_temporary = temporary_path_for(memory_path);
    auto stats = write_memory_file(memory_temporary, memory);
    if (!stats) {
        ::unlink(memory_temporary.c_str());
        return fail(stats.error().with_context("writing the snapshot's memory"));
    }
    if (::rename(memory_temporary.c_str(), memory_path.c_str()) != 0) {
        auto failure = fail_errno("renaming the memory file");
        ::unlink(memory_temporary.c_str());
        return failure;
    }
    auto bytes = encode_state_file(state);
    auto written = write_file_atomically(state_path, std::string_view(reinterpret_cast<const char*>(bytes.data()),
                                                                      bytes.size()),
                                         0600);
    if (!written) {
        // Nothing partial stays: without its state file the memory file is no snapshot.
        ::unlink(memory_path.c_str());
        return fail(written.error().with_context("writing the snapshot's state"));
    }
    TRY_VOID(fsync_directory(dir));
    return stats;
}

Result<SnapshotState> read_snapshot(const std::string& dir) {
    auto bytes = TRY(read_whole_file(dir + "/" + k_state_file, k_max_state_bytes));
    auto state = TRY(decode_state_file(bytes));
    std::string memory_path = dir + "/" + k_memory_file;
    struct stat info {};
    if (::stat(memory_path.c_str(), &info) != 0) return fail_errno(fmt::format("snapshot memory file {}", memory_path));
    if (static_cast<uint64_t>(info.st_size) != state.memory_bytes)
        return fail(ErrorKind::Invalid,
                    fmt::format("snapshot memory file {} is {} bytes; the snapshot's memory is {} bytes{}", memory_path,
                                info.st_size, state.memory_bytes,
                                static_cast<uint64_t>(info.st_size) < state.memory_bytes ? " (truncated)" : ""));
    return state;
}

Inspection inspect_snapshot(const std::string& dir) {
    Inspection result;
    std::string& out = result.text;
    out += fmt::format("snapshot: {}\n", dir);
    auto bytes = read_whole_file(dir + "/" + k_state_file, k_max_state_bytes);
    if (!bytes) {
        out += fmt::format("state file: unreadable: {}\nverdict: INVALID\n", bytes.error().describe());
        return result;
    }
    out += fmt::format("state file: {} bytes\n", bytes->size());
    if (bytes->size() >= k_state_header_size && std::memcmp(bytes->data(), k_magic, sizeof k_magic) == 0)
        out += fmt::format("format version: {} (this corral-vmm reads {})\n", get_le(*bytes, 8, 4), k_format_version);
    auto state = decode_state_file(*bytes);
    if (!state) {
        out += fmt::format("checksum and contents: BAD: {}\nverdict: INVALID\n", state.error().message());
        return result;
    }
    out += "checksum: ok\n";
    out += fmt::format("memory: {} MiB\n", state->memory_bytes >> 20);
    out += fmt::format("vcpus: {}\n", state->vcpus.size());
    out += fmt::format("virtio devices: {}\n", state->virtio.size());
    struct stat info {};
    std::string memory_path = dir + "/" + k_memory_file;
    bool memory_ok = false;
    if (::stat(memory_path.c_str(), &info) != 0) {
        out += fmt::format("memory file: missing ({})\n", std::strerror(errno));
    } else {
        memory_ok = static_cast<uint64_t>(info.st_size) == state->memory_bytes;
        out += fmt::format("memory file: {} bytes, {} bytes allocated on disk{}\n", info.st_size,
                           static_cast<uint64_t>(info.st_blocks) * 512,
                           memory_ok ? "" : " (WRONG SIZE: truncated or not this snapshot's)");
    }
    out += fmt::format("configuration: {}\n", vm_config_to_json(state->config).dump());
    result.valid = memory_ok;
    out += fmt::format("verdict: {}\n", memory_ok ? "valid" : "INVALID");
    return result;
}

}  // namespace corral::vmm::snapshot
