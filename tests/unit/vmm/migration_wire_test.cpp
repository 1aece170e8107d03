// The live-migration stream (vmm/migration/wire.h) as a destination meets it: whole records
// decode; truncated, corrupted, oversized and out-of-range ones are refused with the reason,
// and never write outside guest RAM.

#include "vmm/migration/wire.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "base/unique_fd.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/migration/endpoint.h"

namespace corral::vmm::migration {
namespace {

constexpr uint64_t k_ram = 16ull << 20;

std::string error_of(const auto& result) {
    return result ? std::string("(no error)") : result.error().message();
}

/// A record as receive_record() would return it, from encoded bytes.
Record record_of(std::vector<uint8_t> bytes) {
    Record record;
    record.tag =
        static_cast<uint32_t>(bytes[0]) | bytes[1] << 8 | bytes[2] << 16 | static_cast<uint32_t>(bytes[3]) << 24;
    record.bytes = std::move(bytes);
    return record;
}

/// Both ends of a connected stream socket pair.
struct SocketPair {
    UniqueFd a, b;
    SocketPair() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        a = UniqueFd(fds[0]);
        b = UniqueFd(fds[1]);
    }
};

std::vector<uint8_t> page_of(uint8_t value) {
    return std::vector<uint8_t>(k_page_size, value);
}

TEST(MigrationWire, HelloCarriesTheConfigurationAndEachVcpusCpuid) {
    Hello hello;
    hello.config.kernel_path = "/boot/vmlinuz";
    hello.config.memory_bytes = 64ull << 20;
    hello.config.cpus = 2;
    kvm_cpuid_entry2 entry{};
    entry.function = 7;
    entry.ebx = 0x1234;
    hello.cpuids = {{entry}, {entry, entry}};
    auto decoded = decode_hello(record_of(encode_hello(hello)));
    ASSERT_TRUE(decoded) << error_of(decoded);
    EXPECT_EQ(decoded->config.memory_bytes, 64ull << 20);
    EXPECT_EQ(decoded->config.kernel_path, "/boot/vmlinuz");
    ASSERT_EQ(decoded->cpuids.size(), 2u);
    EXPECT_EQ(decoded->cpuids[1].size(), 2u);
    EXPECT_EQ(decoded->cpuids[0][0].ebx, 0x1234u);
}

TEST(MigrationWire, HelloWithAnotherProtocolVersionOrCpuCountIsRefused) {
    Hello hello;
    hello.config.kernel_path = "/boot/vmlinuz";
    hello.config.cpus = 2;
    hello.cpuids.resize(1);  // one table for two vCPUs
    EXPECT_NE(error_of(decode_hello(record_of(encode_hello(hello)))).find("1 CPUID tables for 2 vCPUs"),
              std::string::npos);

    hello.cpuids.resize(2);
    auto bytes = encode_hello(hello);
    bytes[snapshot::k_section_header_size] = 9;  // the protocol version, then a fixed-up CRC
    auto reencoded = encode_record(k_hello, [&](snapshot::StateWriter& w) {
        w.fixed_bytes(std::span(bytes).subspan(snapshot::k_section_header_size));
    });
    EXPECT_NE(error_of(decode_hello(record_of(reencoded))).find("protocol version 9; this corral-vmm speaks version 1"),
              std::string::npos);
}

TEST(MigrationWire, PagesLandAtTheirAddressesAndZeroPagesClearData) {
    auto memory = GuestMemory::create(k_ram);
    ASSERT_TRUE(memory);
    auto ones = page_of(0x11), twos = page_of(0x22);
    ASSERT_TRUE(memory->write(0x5000, twos));  // a page that became zero at the source
    PageBatch batch;
    batch.add(0x3000, ones.data());
    batch.add(0x5000, nullptr);
    batch.add(k_ram - k_page_size, twos.data());
    auto counts = apply_page_record(record_of(batch.take()), *memory);
    ASSERT_TRUE(counts) << error_of(counts);
    EXPECT_EQ(counts->pages, 2u);
    EXPECT_EQ(counts->zero_pages, 1u);
    EXPECT_EQ(memory->host_pointer(0x3000, 1)[0], 0x11);
    EXPECT_EQ(memory->host_pointer(0x3fff, 1)[0], 0x11);
    EXPECT_EQ(memory->host_pointer(0x5000, 1)[0], 0);
    EXPECT_EQ(memory->host_pointer(0x5fff, 1)[0], 0);
    EXPECT_EQ(memory->host_pointer(k_ram - 1, 1)[0], 0x22);
    EXPECT_TRUE(batch.empty()) << "take() empties the batch";
}

TEST(MigrationWire, APageOutsideGuestRamIsRefusedBeforeAnyByteIsWritten) {
    auto memory = GuestMemory::create(k_ram);
    ASSERT_TRUE(memory);
    auto ones = page_of(0x11);
    for (uint64_t address : std::vector<uint64_t>{k_ram, 0xfee00000, 0x100000000, 0x7ffffffff000, 0xfffffffffffff000}) {
        PageBatch batch;
        batch.add(address, ones.data());
        auto result = apply_page_record(record_of(batch.take()), *memory);
        EXPECT_NE(error_of(result).find("which is not a page of guest RAM (16 MiB)"), std::string::npos)
            << std::hex << address << ": " << error_of(result);
    }
    // An address that is not page-aligned reads as unknown flags, never as a partial page.
    PageBatch batch;
    batch.add(0x3000 | 0x10, ones.data());
    EXPECT_NE(error_of(apply_page_record(record_of(batch.take()), *memory)).find("unknown flags 0x10"),
              std::string::npos);
    EXPECT_EQ(memory->host_pointer(0x3000, 1)[0], 0);
}

TEST(MigrationWire, ACorruptedPageRecordFailsItsChecksum) {
    auto memory = GuestMemory::create(k_ram);
    ASSERT_TRUE(memory);
    auto ones = page_of(0x11);
    PageBatch batch;
    batch.add(0x3000, ones.data());
    auto bytes = batch.take();
    bytes[bytes.size() - 100] ^= 0x40;
    EXPECT_NE(error_of(apply_page_record(record_of(bytes), *memory)).find("fails its checksum"), std::string::npos);
    EXPECT_EQ(memory->host_pointer(0x3000, 1)[0], 0) << "nothing of a corrupted record lands";
}

TEST(MigrationWire, TooManyPagesInOneRecordAreRefused) {
    auto memory = GuestMemory::create(k_ram);
    ASSERT_TRUE(memory);
    auto bytes = encode_record(k_pages, [](snapshot::StateWriter& w) { w.u32(k_max_pages_per_record + 1); });
    EXPECT_NE(error_of(apply_page_record(record_of(bytes), *memory)).find("257 pages in one record; at most 256"),
              std::string::npos);
}

TEST(MigrationWire, RecordsTravelWholeAndATruncatedOneIsRefused) {
    SocketPair pair;
    auto ones = page_of(0x11);
    PageBatch batch;
    batch.add(0x3000, ones.data());
    auto bytes = batch.take();
    ASSERT_TRUE(send_all(pair.a.get(), bytes));
    auto received = receive_record(pair.b.get(), "source");
    ASSERT_TRUE(received) << error_of(received);
    EXPECT_EQ(received->tag, k_pages);
    EXPECT_EQ(received->bytes, bytes);

    // Half a record, then the source is gone.
    ASSERT_TRUE(send_all(pair.a.get(), std::span(bytes).first(bytes.size() / 2)));
    pair.a.reset();
    EXPECT_NE(
        error_of(receive_record(pair.b.get(), "source")).find("the source's stream ended inside a record (truncated)"),
        std::string::npos);
    // And at a record boundary: closed, not truncated.
    SocketPair second;
    second.a.reset();
    EXPECT_NE(error_of(receive_record(second.b.get(), "source")).find("the source closed the stream"),
              std::string::npos);
}

TEST(MigrationWire, AnAnnouncedLengthAboveTheLimitIsRefusedBeforeReading) {
    SocketPair pair;
    std::vector<uint8_t> header(snapshot::k_section_header_size, 0);
    std::memcpy(header.data(), "PAGE", 4);
    header[4] = 1;
    header[11] = 0xff;  // length 0xff000000
    ASSERT_TRUE(send_all(pair.a.get(), header));
    EXPECT_NE(error_of(receive_record(pair.b.get(), "source")).find("record of 4278190080 bytes; at most 67108864"),
              std::string::npos);
}

TEST(MigrationWire, AFailureRecordBecomesThePeersErrorAndAnUnexpectedTagAProtocolError) {
    auto failure = record_of(encode_failure("--memory: the snapshot has 64 MiB, 128 MiB given"));
    EXPECT_EQ(error_of(decode_record(failure, k_accept, "destination", [](auto&) {})),
              "the destination says: --memory: the snapshot has 64 MiB, 128 MiB given");
    auto go = record_of(encode_empty_record(k_go));
    EXPECT_EQ(error_of(decode_record(go, k_accept, "destination", [](auto&) {})),
              "the destination sent a 'GO__' record where 'ACPT' belongs");
    EXPECT_TRUE(decode_record(go, k_go, "source", [](auto&) {}));
}

TEST(MigrationEndpoint, UnixAndTcpFormsParseAndBadOnesNameTheField) {
    auto unix_endpoint = parse_endpoint("unix:/run/x.sock", "--migrate-listen");
    ASSERT_TRUE(unix_endpoint);
    EXPECT_EQ(unix_endpoint->kind, Endpoint::Kind::Unix);
    EXPECT_EQ(unix_endpoint->path, "/run/x.sock");
    auto tcp = parse_endpoint("tcp:[::1]:4444", "\"to\"");
    ASSERT_TRUE(tcp);
    EXPECT_EQ(tcp->host, "::1");
    EXPECT_EQ(tcp->port, 4444);
    EXPECT_EQ(parse_endpoint("tcp:127.0.0.1:80", "x")->host, "127.0.0.1");
    EXPECT_EQ(error_of(parse_endpoint("unix:relative", "--migrate-listen")),
              "--migrate-listen 'unix:relative': the socket path must be absolute; expected unix:/ABSOLUTE/PATH or "
              "tcp:HOST:PORT");
    EXPECT_NE(error_of(parse_endpoint("tcp:host:0", "\"to\""))
                  .find("\"to\" 'tcp:host:0': the port must be a number from 1 to 65535"),
              std::string::npos);
    EXPECT_NE(error_of(parse_endpoint("tcp:4444", "x")).find("a host and a port are needed"), std::string::npos);
    EXPECT_NE(error_of(parse_endpoint("http://h", "x")).find("unknown kind"), std::string::npos);
}

}  // namespace
}  // namespace corral::vmm::migration
