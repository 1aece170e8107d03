#include "vmm/migration/wire.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "vmm/memory/guest_memory.h"

namespace corral::vmm::migration {
namespace {

using snapshot::StateReader;
using snapshot::StateWriter;

constexpr uint16_t k_record_version = 1;
constexpr size_t k_max_config_json = 1 << 20;
constexpr uint32_t k_max_vcpus = 256;
constexpr size_t k_max_cpuid_entries = 256;  // KVM_MAX_CPUID_ENTRIES
/// A PAGE entry's address is page-aligned, so its low 12 bits carry flags.
constexpr uint64_t k_flag_zero = 1;
constexpr uint64_t k_flag_mask = k_page_size - 1;

uint32_t le32(std::span<const uint8_t> bytes, size_t at) {
    return static_cast<uint32_t>(bytes[at]) | static_cast<uint32_t>(bytes[at + 1]) << 8 |
           static_cast<uint32_t>(bytes[at + 2]) << 16 | static_cast<uint32_t>(bytes[at + 3]) << 24;
}

/// Reads exactly out.size() bytes; false at the end of the stream before the first byte.
Result<bool> receive_exact(int fd, std::span<uint8_t> out, const std::string& peer) {
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::recv(fd, out.data() + done, out.size() - done, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return fail(ErrorKind::Failed, fmt::format("the {} sent nothing for too long (timed out)", peer));
        if (n < 0)
            return fail_errno(fmt::format("reading from the {}", peer));
        if (n == 0) {
            if (done == 0)
                return false;
            return fail(ErrorKind::Invalid, fmt::format("the {}'s stream ended inside a record (truncated)", peer));
        }
        done += static_cast<size_t>(n);
    }
    return true;
}

}  // namespace

std::vector<uint8_t> encode_record(uint32_t tag, const std::function<void(StateWriter&)>& fill) {
    StateWriter writer;
    writer.section(tag, k_record_version, fill);
    return writer.take();
}

std::vector<uint8_t> encode_empty_record(uint32_t tag) {
    return encode_record(tag, [](StateWriter&) {});
}

std::vector<uint8_t> encode_failure(const std::string& message) {
    return encode_record(k_fail, [&](StateWriter& w) {
        w.bytes(std::span(reinterpret_cast<const uint8_t*>(message.data()), std::min<size_t>(message.size(), 4096)));
    });
}

Result<void> decode_record(const Record& record, uint32_t expected_tag, const std::string& peer,
                           const std::function<void(StateReader&)>& read) {
    if (record.tag == k_fail && expected_tag != k_fail) {
        std::string message;
        StateReader reader(record.bytes, "failure record");
        reader.section(k_fail, k_record_version, [&](StateReader& r, uint16_t) {
            auto raw = r.bytes(4096);
            message.assign(raw.begin(), raw.end());
        });
        if (!reader.finish())
            return fail(ErrorKind::Failed, fmt::format("the {} failed (unreadable reason)", peer));
        return fail(ErrorKind::Failed, fmt::format("the {} says: {}", peer, message));
    }
    if (record.tag != expected_tag)
        return fail(ErrorKind::Invalid, fmt::format("the {} sent a '{}' record where '{}' belongs", peer,
                                                    snapshot::tag_name(record.tag), snapshot::tag_name(expected_tag)));
    StateReader reader(record.bytes, fmt::format("migration stream from the {}", peer));
    reader.section(expected_tag, k_record_version, [&](StateReader& r, uint16_t) { read(r); });
    return reader.finish();
}

std::vector<uint8_t> encode_hello(const Hello& hello) {
    return encode_record(k_hello, [&](StateWriter& w) {
        w.u32(k_protocol_version);
        std::string json = vm_config_to_json(hello.config).dump();
        w.bytes(std::span(reinterpret_cast<const uint8_t*>(json.data()), json.size()));
        w.u32(static_cast<uint32_t>(hello.cpuids.size()));
        for (const auto& cpuid : hello.cpuids)
            w.bytes(std::span(reinterpret_cast<const uint8_t*>(cpuid.data()), cpuid.size() * sizeof(kvm_cpuid_entry2)));
    });
}

Result<Hello> decode_hello(const Record& record) {
    Hello hello;
    std::string json;
    TRY_VOID(decode_record(record, k_hello, "source", [&](StateReader& r) {
        uint32_t version = r.u32();
        if (r.ok() && version != k_protocol_version)
            return r.fail(
                fmt::format("protocol version {}; this corral-vmm speaks version {}", version, k_protocol_version));
        auto raw = r.bytes(k_max_config_json);
        json.assign(raw.begin(), raw.end());
        uint32_t vcpus = r.u32();
        if (r.ok() && (vcpus == 0 || vcpus > k_max_vcpus))
            return r.fail(fmt::format("{} vCPUs; 1 to {} allowed", vcpus, k_max_vcpus));
        for (uint32_t i = 0; i < vcpus && r.ok(); ++i) {
            auto table = r.bytes(k_max_cpuid_entries * sizeof(kvm_cpuid_entry2));
            if (table.size() % sizeof(kvm_cpuid_entry2) != 0)
                return r.fail(
                    fmt::format("vCPU {}'s CPUID table is {} bytes, not a whole number of entries", i, table.size()));
            std::vector<kvm_cpuid_entry2> entries(table.size() / sizeof(kvm_cpuid_entry2));
            if (!table.empty())
                std::memcpy(entries.data(), table.data(), table.size());
            hello.cpuids.push_back(std::move(entries));
        }
    }));
    auto document = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
    if (document.is_discarded())
        return fail(ErrorKind::Invalid, "migration stream: the VM configuration is not JSON");
    hello.config = TRY_CONTEXT(vm_config_from_json(document), "migration stream: VM configuration");
    if (hello.cpuids.size() != hello.config.cpus)
        return fail(ErrorKind::Invalid, fmt::format("migration stream: {} CPUID tables for {} vCPUs",
                                                    hello.cpuids.size(), hello.config.cpus));
    return hello;
}

void PageBatch::add(uint64_t address, const uint8_t* data) {
    m_pages.emplace_back(address | (data ? 0 : k_flag_zero), data);
}

std::vector<uint8_t> PageBatch::take() {
    StateWriter writer;
    writer.reserve(snapshot::k_section_header_size + 4 + m_pages.size() * (8 + k_page_size));
    writer.section(k_pages, k_record_version, [&](StateWriter& w) {
        w.u32(static_cast<uint32_t>(m_pages.size()));
        for (const auto& [word, data] : m_pages) {
            w.u64(word);
            if (data)
                w.fixed_bytes(std::span(data, k_page_size));
        }
    });
    m_pages.clear();
    return writer.take();
}

Result<PageCounts> apply_page_record(const Record& record, const GuestMemory& memory) {
    PageCounts counts;
    TRY_VOID(decode_record(record, k_pages, "source", [&](StateReader& r) {
        uint32_t count = r.u32();
        if (r.ok() && count > k_max_pages_per_record)
            return r.fail(fmt::format("{} pages in one record; at most {}", count, k_max_pages_per_record));
        for (uint32_t i = 0; i < count && r.ok(); ++i) {
            uint64_t word = r.u64();
            if (!r.ok())
                return;
            uint64_t flags = word & k_flag_mask, address = word & ~k_flag_mask;
            if (flags & ~k_flag_zero)
                return r.fail(fmt::format("page entry {} has unknown flags 0x{:x}", i, flags));
            // The bounds check for every page the peer names: a whole page inside one RAM region.
            uint8_t* host = memory.host_pointer(address, k_page_size);
            if (!host)
                return r.fail(
                    fmt::format("page entry {} is at 0x{:x}, which is not a page of guest RAM "
                                "({} MiB)",
                                i, address, memory.ram_size() >> 20));
            if (flags & k_flag_zero) {
                std::memset(host, 0, k_page_size);
                ++counts.zero_pages;
            } else {
                // Checked by the record's CRC and length, so the page is whole when it lands.
                r.fixed_bytes(std::span(host, k_page_size));
                ++counts.pages;
            }
        }
    }));
    return counts;
}

Result<void> send_all(int fd, std::span<const uint8_t> bytes) {
    size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::send(fd, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return fail(ErrorKind::Failed, "the peer took nothing for too long (timed out)");
        if (n < 0)
            return fail_errno("sending the migration stream");
        done += static_cast<size_t>(n);
    }
    return {};
}

Result<Record> receive_record(int fd, const std::string& peer) {
    Record record;
    TRY_VOID(receive_record_into(fd, peer, record));
    return record;
}

Result<void> receive_record_into(int fd, const std::string& peer, Record& record) {
    uint8_t header[snapshot::k_section_header_size];
    bool more = TRY(receive_exact(fd, header, peer));
    if (!more)
        return fail(ErrorKind::Failed, fmt::format("the {} closed the stream", peer));
    std::span<const uint8_t> header_bytes(header);
    uint32_t length = le32(header_bytes, 8);
    if (length > k_max_record_bytes)
        return fail(ErrorKind::Invalid,
                    fmt::format("the {} announces a '{}' record of {} bytes; at most {} allowed", peer,
                                snapshot::tag_name(le32(header_bytes, 0)), length, k_max_record_bytes));
    record.tag = le32(header_bytes, 0);
    // Same size as the last record (most PAGE records): no reallocation, no zero fill.
    record.bytes.resize(snapshot::k_section_header_size + length);
    std::copy(std::begin(header), std::end(header), record.bytes.begin());
    auto payload = std::span(record.bytes).subspan(snapshot::k_section_header_size);
    if (!payload.empty() && !TRY(receive_exact(fd, payload, peer)))
        return fail(ErrorKind::Invalid, fmt::format("the {}'s stream ended inside a record (truncated)", peer));
    return {};
}

}  // namespace corral::vmm::migration
