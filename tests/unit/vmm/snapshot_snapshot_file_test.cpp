// The snapshot folder: a state file checked by magic, version, length and CRC, and a sparse
// memory file; every refusal names its reason.
#include "vmm/snapshot/snapshot_file.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "vmm/memory/guest_memory.h"
#include "vmm/snapshot/crc32c.h"
#include "vmm/snapshot/state_stream.h"

namespace corral::vmm::snapshot {
namespace {

class SnapshotFileTest : public ::testing::Test {
protected:
    void SetUp() override {
        char pattern[] = "/tmp/corral-snapshot-test-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        root = pattern;
        dir = root + "/snap";
        state.config.kernel_path = "/boot/vmlinuz";
        state.config.memory_bytes = 8ull << 20;
        state.config.cpus = 2;
        state.memory_bytes = state.config.memory_bytes;
        state.vcpus.resize(2);
        state.vcpus[1].id = 1;
        state.vcpus[0].regs.rip = 0x1234;
        state.vm.ioapic.chip_id = 2;
        state.serial.scr = 0x5A;
    }
    void TearDown() override { std::filesystem::remove_all(root); }

    std::string root, dir;
    SnapshotState state;
    GuestMemory memory = GuestMemory::create(8ull << 20).value();
};

TEST_F(SnapshotFileTest, WritesASparseMemoryFileAndReadsTheStateBack) {
    // Two touched pages, one far from the other.
    memory.write_object<uint64_t>(0x1000, 0xDEADBEEF).value();
    memory.write_object<uint64_t>(0x700000 + 8, 42).value();
    auto stats = write_snapshot(dir, state, memory);
    ASSERT_TRUE(stats) << stats.error().describe();
    EXPECT_EQ(stats->pages_written, 2u);
    struct stat info {};
    ASSERT_EQ(::stat((dir + "/memory").c_str(), &info), 0);
    EXPECT_EQ(static_cast<uint64_t>(info.st_size), 8ull << 20);
    EXPECT_LT(static_cast<uint64_t>(info.st_blocks) * 512, 1ull << 20) << "holes where the guest wrote nothing";

    auto read = read_snapshot(dir);
    ASSERT_TRUE(read) << read.error().describe();
    EXPECT_EQ(read->config.cpus, 2u);
    EXPECT_EQ(read->vcpus[0].regs.rip, 0x1234u);
    EXPECT_EQ(read->serial.scr, 0x5A);
    EXPECT_EQ(encode_state_file(*read), encode_state_file(state));

    std::ifstream file(dir + "/memory", std::ios::binary);
    file.seekg(0x1000);
    uint64_t value = 0;
    file.read(reinterpret_cast<char*>(&value), 8);
    EXPECT_EQ(value, 0xDEADBEEFu);

    auto again = write_snapshot(dir, state, memory);
    ASSERT_FALSE(again) << "a folder holding a snapshot is not overwritten";
    EXPECT_NE(again.error().message().find("already holds a snapshot"), std::string::npos);
}

TEST_F(SnapshotFileTest, TheMemoryFileHoldsEveryTouchedPageAcrossManyPagemapReads) {
    // 64 MiB is four of TouchedPages' 16 MiB pagemap reads: runs of written pages cross their
    // edges, single pages sit on both sides of them, and touched pages that hold zeros are
    // holes; the file must equal guest memory byte for byte.
    GuestMemory large = GuestMemory::create(64ull << 20).value();
    auto region = large.regions().front();
    uint32_t seed = 7;
    auto fill_page = [&](uint64_t page) {
        for (uint64_t i = 0; i < 4096; ++i) {
            seed = seed * 1103515245u + 12345u;
            region.host[page * 4096 + i] = static_cast<uint8_t>(seed >> 16);
        }
    };
    for (uint64_t page : {0ull, 1ull, 4095ull, 4096ull, 8191ull, 12288ull, 16383ull})
        fill_page(page);
    for (uint64_t page = 4090; page < 4110; ++page)
        fill_page(page);
    std::memset(region.host + 9000 * 4096, 0, 4096);  // touched, zero
    ASSERT_TRUE(write_snapshot(dir, state, large));
    std::ifstream file(dir + "/memory", std::ios::binary);
    std::vector<char> bytes(64ull << 20);
    file.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_EQ(file.gcount(), static_cast<std::streamsize>(bytes.size()));
    EXPECT_EQ(std::memcmp(bytes.data(), region.host, bytes.size()), 0);
}

TEST_F(SnapshotFileTest, MemoryMappedFromASnapshotIsSavedWholeEvenWhereUntouched) {
    memory.write_object<uint64_t>(0x3000, 0x1122334455667788).value();
    ASSERT_TRUE(write_snapshot(dir, state, memory));
    // A restored VM's memory: mapped from the file, pages not touched since (so not present in
    // this process) still hold the file's data and must be in the next snapshot.
    int fd = ::open((dir + "/memory").c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    auto restored = GuestMemory::map_private_file(fd, 8ull << 20);
    ::close(fd);
    ASSERT_TRUE(restored) << restored.error().describe();
    EXPECT_TRUE(restored->file_backed());
    std::string second = root + "/second";
    auto stats = write_snapshot(second, state, *restored);
    ASSERT_TRUE(stats) << stats.error().describe();
    EXPECT_EQ(stats->pages_written, 1u);
    std::ifstream file(second + "/memory", std::ios::binary);
    file.seekg(0x3000);
    uint64_t value = 0;
    file.read(reinterpret_cast<char*>(&value), 8);
    EXPECT_EQ(value, 0x1122334455667788u);
}

TEST_F(SnapshotFileTest, RefusesOtherVersionsBadChecksumsAndTruncation) {
    auto bytes = encode_state_file(state);
    auto other_version = bytes;
    other_version[8] = 2;
    auto refused = decode_state_file(other_version);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("format version 2; this corral-vmm reads version 1"), std::string::npos)
        << refused.error().message();

    auto corrupted = bytes;
    corrupted[bytes.size() / 2] ^= 0x10;
    refused = decode_state_file(corrupted);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("checksum mismatch"), std::string::npos) << refused.error().message();

    for (size_t size = 0; size < bytes.size(); size += 13)
        EXPECT_FALSE(decode_state_file(std::span(bytes).first(size))) << size;
    auto not_ours = bytes;
    not_ours[0] = 'X';
    EXPECT_FALSE(decode_state_file(not_ours));
}

// The 0xCF8 latch: a guest may be snapshotted between loading CONFIG_ADDRESS and using it.
TEST_F(SnapshotFileTest, KeepsThePciConfigAddressAndReadsFilesWrittenBeforeItWasSaved) {
    state.pci_config_address = 0x80001810;  // enable, device 3, register 0x10
    auto bytes = encode_state_file(state);
    auto read = decode_state_file(bytes);
    ASSERT_TRUE(read) << read.error().describe();
    EXPECT_EQ(read->pci_config_address, 0x80001810u);

    // A file from before: the same state without the trailing PCIA section (16-byte section
    // header + the u32), its header's length and checksum made to match.
    auto older = bytes;
    older.resize(bytes.size() - k_section_header_size - 4);
    std::span<const uint8_t> body(older.data() + k_state_header_size, older.size() - k_state_header_size);
    auto put32 = [&](size_t at, uint64_t value, int size) {
        for (int i = 0; i < size; ++i) older[at + i] = static_cast<uint8_t>(value >> (8 * i));
    };
    put32(16, body.size(), 8);
    put32(24, crc32c(body), 4);
    read = decode_state_file(older);
    ASSERT_TRUE(read) << read.error().describe();
    EXPECT_EQ(read->pci_config_address, 0u);
    EXPECT_EQ(read->serial.scr, 0x5A);
}

TEST_F(SnapshotFileTest, RefusesATruncatedMemoryFile) {
    ASSERT_TRUE(write_snapshot(dir, state, memory));
    ASSERT_EQ(::truncate((dir + "/memory").c_str(), 4 << 20), 0);
    auto refused = read_snapshot(dir);
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("(truncated)"), std::string::npos) << refused.error().message();
    auto inspection = inspect_snapshot(dir);
    EXPECT_FALSE(inspection.valid);
    EXPECT_NE(inspection.text.find("verdict: INVALID"), std::string::npos) << inspection.text;
}

TEST_F(SnapshotFileTest, InspectionSaysWhatASnapshotHolds) {
    ASSERT_TRUE(write_snapshot(dir, state, memory));
    auto inspection = inspect_snapshot(dir);
    EXPECT_TRUE(inspection.valid) << inspection.text;
    for (const char* line : {"format version: 1", "checksum: ok", "memory: 8 MiB", "vcpus: 2", "verdict: valid",
                             "\"kernel\":\"/boot/vmlinuz\""})
        EXPECT_NE(inspection.text.find(line), std::string::npos) << line << "\n" << inspection.text;

    // A flipped byte in the state file: the verdict says so.
    std::fstream file(dir + "/state", std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(40);
    file.put('\x7f');
    file.close();
    inspection = inspect_snapshot(dir);
    EXPECT_FALSE(inspection.valid);
    EXPECT_NE(inspection.text.find("checksum mismatch"), std::string::npos) << inspection.text;
}

}  // namespace
}  // namespace corral::vmm::snapshot
