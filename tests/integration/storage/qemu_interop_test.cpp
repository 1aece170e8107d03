// Interoperability with QEMU's qemu-img as the oracle: images we write pass `qemu-img check` and
// `qemu-img compare`; images qemu-img made read back the bytes `qemu-img convert -O raw` gives;
// a writer SIGKILLed at random moments leaves no corruption and keeps what it flushed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <random>
#include <set>

#include "storage/endian.h"
#include "storage/image.h"
#include "storage/qcow2/qcow2_image.h"
#include "storage/raw_device.h"

#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace corral::storage {
namespace {

class TempDir {
public:
    TempDir() {
        char pattern[] = "/tmp/corral-storage-interop-XXXXXX";
        m_path = ::mkdtemp(pattern);
    }
    ~TempDir() { std::filesystem::remove_all(m_path); }
    std::string path(const std::string& name) const { return m_path + "/" + name; }

private:
    std::string m_path;
};

/// Runs a shell command; returns its exit status and (optionally) its output.
int run(const std::string& command, std::string* output = nullptr) {
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (!p) return -1;
    std::string out;
    char buf[4096];
    while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
    int status = ::pclose(p);
    if (output) *output = out;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool have_qemu_img() { return run("qemu-img --version") == 0; }

#define REQUIRE_QEMU_IMG()                                                 \
    if (!have_qemu_img()) GTEST_SKIP() << "qemu-img is not installed (apt-get install qemu-utils)"

std::unique_ptr<BlockDevice> open_rw(const std::string& path) {
    auto dev = open_image(path, ImageOpenOptions{.access = Access::ReadWrite});
    EXPECT_TRUE(dev) << dev.error().describe();
    return dev ? std::move(*dev) : nullptr;
}

void expect_qemu_check_clean(const std::string& path) {
    std::string out;
    int rc = run("qemu-img check " + path, &out);
    EXPECT_EQ(rc, 0) << out;
}

/// A seeded workload of writes, zeroes, discards and flushes, applied to several devices alike.
void workload(std::vector<BlockDevice*> devices, uint32_t seed, int ops) {
    std::mt19937_64 rng(seed);
    const uint64_t size = devices[0]->size();
    for (int i = 0; i < ops; ++i) {
        uint64_t len = 512 * (1 + rng() % 300);
        uint64_t off = (rng() % ((size - len) / 512)) * 512;
        int kind = int(rng() % 20);
        std::vector<uint8_t> data(len);
        for (auto& b : data) b = uint8_t(rng() >> 7);
        for (auto* d : devices) {
            if (kind < 15) {
                ASSERT_TRUE(d->write_at(off, data));
            } else if (kind < 18) {
                ASSERT_TRUE(d->write_zeroes(off, len));
            } else if (kind < 19) {
                // Discard is a hint; keep the devices comparable by zeroing the same range.
                ASSERT_TRUE(d->write_zeroes(off, len));
                ASSERT_TRUE(d->discard(off, len));
            } else {
                ASSERT_TRUE(d->flush());
            }
        }
    }
    for (auto* d : devices) ASSERT_TRUE(d->flush());
}

TEST(QemuInterop, RandomWorkloadMatchesRawAndPassesQemuCheck) {
    REQUIRE_QEMU_IMG();
    for (uint32_t cluster : {65536u, 4096u}) {
        TempDir dir;
        ASSERT_TRUE(create_image(dir.path("a.qcow2"), ImageCreateOptions{.size = 64u << 20, .cluster_size = cluster}));
        ASSERT_TRUE(create_image(dir.path("a.raw"), ImageCreateOptions{.format = ImageFormat::Raw, .size = 64u << 20}));
        {
            auto q = open_rw(dir.path("a.qcow2"));
            auto r = open_rw(dir.path("a.raw"));
            workload({q.get(), r.get()}, 42 + cluster, 400);
        }
        expect_qemu_check_clean(dir.path("a.qcow2"));
        std::string out;
        EXPECT_EQ(run("qemu-img compare -f qcow2 -F raw " + dir.path("a.qcow2") + " " + dir.path("a.raw"), &out), 0)
            << out;
    }
}

TEST(QemuInterop, OverlayOnQemuBaseMatchesRaw) {
    REQUIRE_QEMU_IMG();
    TempDir dir;
    std::string base = dir.path("base.qcow2"), raw = dir.path("expected.raw");
    ASSERT_EQ(run("qemu-img create -q -f qcow2 " + base + " 32M"), 0);
    ASSERT_EQ(run("qemu-io -c 'write -P 0x5a 1M 3M' -c 'write -P 0x33 20M 1M' " + base), 0);
    ASSERT_EQ(run("qemu-img convert -O raw " + base + " " + raw), 0);
    ASSERT_TRUE(create_image(dir.path("top.qcow2"), ImageCreateOptions{.backing_file = "base.qcow2"}));
    {
        auto top = open_rw(dir.path("top.qcow2"));
        auto r = open_rw(raw);
        workload({top.get(), r.get()}, 7, 300);
    }
    expect_qemu_check_clean(dir.path("top.qcow2"));
    std::string out;
    EXPECT_EQ(run("qemu-img compare -F raw " + dir.path("top.qcow2") + " " + raw, &out), 0) << out;
    EXPECT_EQ(run("qemu-img info " + dir.path("top.qcow2"), &out), 0);
    EXPECT_NE(out.find("backing file: base.qcow2"), std::string::npos) << out;
}

TEST(QemuInterop, SnapshotsWeMakeAreSeenByQemu) {
    REQUIRE_QEMU_IMG();
    TempDir dir;
    std::string img = dir.path("s.qcow2");
    ASSERT_TRUE(create_image(img, ImageCreateOptions{.size = 16u << 20}));
    ASSERT_TRUE(create_image(dir.path("v1.raw"), ImageCreateOptions{.format = ImageFormat::Raw, .size = 16u << 20}));
    {
        auto q = open_rw(img);
        auto r = open_rw(dir.path("v1.raw"));
        workload({q.get(), r.get()}, 11, 100);
        ASSERT_TRUE(dynamic_cast<qcow2::Qcow2Image&>(*q).create_snapshot("before"));
        workload({q.get()}, 12, 100);
    }
    expect_qemu_check_clean(img);
    std::string out;
    ASSERT_EQ(run("qemu-img snapshot -l " + img, &out), 0);
    EXPECT_NE(out.find("before"), std::string::npos) << out;
    ASSERT_EQ(run("qemu-img snapshot -a before " + img, &out), 0) << out;
    EXPECT_EQ(run("qemu-img compare -F raw " + img + " " + dir.path("v1.raw"), &out), 0) << out;
    {
        auto q = open_rw(img);
        ASSERT_TRUE(dynamic_cast<qcow2::Qcow2Image&>(*q).delete_snapshot("before"));
    }
    expect_qemu_check_clean(img);
}

struct QemuMade {
    const char* name;
    const char* convert_options;
};

class QemuMadeImage : public ::testing::TestWithParam<QemuMade> {};

TEST_P(QemuMadeImage, ReadsTheSameBytesAsQemu) {
    REQUIRE_QEMU_IMG();
    TempDir dir;
    std::string src = dir.path("src.raw"), img = dir.path("img.qcow2"), expect = dir.path("expect.raw");
    // Mixed content: random, text-like (compressible), zeros, a partial last cluster.
    {
        std::mt19937_64 rng(5);
        std::vector<uint8_t> data((24u << 20) + 12345, 0);
        for (size_t i = 1u << 20; i < (5u << 20); ++i) data[i] = uint8_t(rng());
        for (size_t i = 9u << 20; i < (15u << 20); ++i) data[i] = uint8_t("qcow2 compressible text "[i % 24]);
        for (size_t i = data.size() - 5000; i < data.size(); ++i) data[i] = 0x77;
        FILE* f = fopen(src.c_str(), "wb");
        fwrite(data.data(), 1, data.size(), f);
        fclose(f);
    }
    const QemuMade& p = GetParam();
    std::string out;
    ASSERT_EQ(run(std::string("qemu-img convert -f raw -O qcow2 ") + p.convert_options + " " + src + " " + img, &out), 0)
        << out;
    if (std::string(p.name) == "internal_snapshot") {
        ASSERT_EQ(run("qemu-img snapshot -c snap1 " + img), 0);
        ASSERT_EQ(run("qemu-io -c 'write -P 0x42 2M 1M' -c 'discard 10M 1M' " + img), 0);
        ASSERT_EQ(run("qemu-img snapshot -c snap2 " + img), 0);
    }
    if (std::string(p.name) == "backing_chain") {
        std::string top = dir.path("top.qcow2"), top2 = dir.path("top2.qcow2");
        ASSERT_EQ(run("qemu-img create -q -f qcow2 -b img.qcow2 -F qcow2 " + top), 0);
        ASSERT_EQ(run("qemu-io -c 'write -P 0x42 2M 100k' -c 'write -z 10M 1M' " + top), 0);
        ASSERT_EQ(run("qemu-img create -q -f qcow2 -b top.qcow2 -F qcow2 " + top2), 0);
        ASSERT_EQ(run("qemu-io -c 'write -P 0x43 3M 64k' " + top2), 0);
        img = top2;
    }
    ASSERT_EQ(run("qemu-img convert -O raw " + img + " " + expect), 0);
    auto dev = open_image(img, ImageOpenOptions{});
    ASSERT_TRUE(dev) << dev.error().describe();
    auto want = *File::open(expect, Access::ReadOnly);
    ASSERT_EQ((*dev)->size(), *want.size());
    std::vector<uint8_t> a(1u << 20), b(1u << 20);
    for (uint64_t off = 0; off < (*dev)->size(); off += a.size()) {
        uint64_t n = std::min<uint64_t>(a.size(), (*dev)->size() - off);
        ASSERT_TRUE((*dev)->read_at(off, std::span(a).subspan(0, n)));
        ASSERT_TRUE(want.read_zero_fill(off, std::span(b).subspan(0, n)));
        ASSERT_TRUE(std::equal(a.begin(), a.begin() + long(n), b.begin())) << "differs in MiB at " << off;
    }
    auto* q = dynamic_cast<qcow2::Qcow2Image*>(dev->get());
    ASSERT_NE(q, nullptr);
    auto check = q->check(qcow2::Repair::No);
    ASSERT_TRUE(check) << check.error().describe();
    EXPECT_EQ(check->corruptions, 0u);
    EXPECT_EQ(check->leaks, 0u);
    for (auto& m : check->messages) ADD_FAILURE() << m;
}

INSTANTIATE_TEST_SUITE_P(Variants, QemuMadeImage,
                         ::testing::Values(QemuMade{"plain", ""}, QemuMade{"small_clusters", "-o cluster_size=4096"},
                                           QemuMade{"v2", "-o compat=0.10"}, QemuMade{"zlib", "-c"},
                                           QemuMade{"zstd", "-c -o compression_type=zstd"},
                                           QemuMade{"extended_l2", "-o extended_l2=on"},
                                           QemuMade{"refcount_bits_1", "-o refcount_bits=1"},
                                           QemuMade{"refcount_bits_64", "-o refcount_bits=64"},
                                           QemuMade{"internal_snapshot", ""}, QemuMade{"backing_chain", ""}),
                         [](const auto& info) { return std::string(info.param.name); });

// ---------------------------------------------------------------------------------------------
// Crash test

struct Op {
    uint64_t offset, length;
    uint8_t fill;
    bool discard;
};

Op op_for(uint32_t seed, uint64_t index, uint64_t size) {
    std::mt19937_64 rng(uint64_t(seed) * 1000003 + index);
    Op op;
    op.length = 512 * (1 + rng() % 256);
    op.offset = (rng() % ((size - op.length) / 512)) * 512;
    op.fill = uint8_t(1 + rng() % 255);
    op.discard = rng() % 10 == 0;
    return op;
}

/// The child: writes ops forever, flushing every few ops and reporting "flushed through op N".
[[noreturn]] void crash_child(const std::string& path, uint32_t seed, int report_fd) {
    auto dev = open_image(path, ImageOpenOptions{.access = Access::ReadWrite});
    if (!dev) _exit(10);
    std::mt19937 rng(seed);
    for (uint64_t i = 0;; ++i) {
        Op op = op_for(seed, i, (*dev)->size());
        if (op.discard) {
            // write_zeroes frees whole clusters (like discard) and zeroes the partial ends.
            if (!(*dev)->write_zeroes(op.offset, op.length)) _exit(11);
            if (!(*dev)->discard(op.offset, op.length)) _exit(11);
        } else {
            std::vector<uint8_t> data(op.length, op.fill);
            if (!(*dev)->write_at(op.offset, data)) _exit(12);
        }
        if (rng() % 8 == 0) {
            if (!(*dev)->flush()) _exit(13);
            uint64_t done = i + 1;
            if (::write(report_fd, &done, sizeof done) != sizeof done) _exit(14);
        }
    }
}

TEST(QemuInterop, SigkillAtRandomMomentsLeavesNoCorruptionAndKeepsFlushedData) {
    REQUIRE_QEMU_IMG();
    constexpr uint64_t size = 32u << 20;
    std::mt19937 trial_rng(2024);
    int trials_with_flushed_data = 0;
    for (uint32_t trial = 0; trial < 30; ++trial) {
        TempDir dir;
        std::string img = dir.path("crash.qcow2");
        ASSERT_TRUE(create_image(img, ImageCreateOptions{.size = size}));
        int fds[2];
        ASSERT_EQ(::pipe(fds), 0);
        uint32_t seed = 100 + trial;
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(fds[0]);
            crash_child(img, seed, fds[1]);
        }
        ::close(fds[1]);
        ::usleep(useconds_t(30000 + trial_rng() % 250000));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with " << WEXITSTATUS(status);
        uint64_t flushed = 0, value = 0;
        while (::read(fds[0], &value, sizeof value) == sizeof value) flushed = value;
        ::close(fds[0]);
        trials_with_flushed_data += flushed > 0;

        std::string out;
        int rc = run("qemu-img check " + img, &out);
        EXPECT_TRUE(rc == 0 || rc == 3) << "trial " << trial << ": qemu-img check exit " << rc << "\n" << out;

        // Bytes written by flushed ops and not touched since must be intact.
        std::vector<uint8_t> model(size, 0);
        std::vector<bool> touched_later(size, false);
        for (uint64_t i = 0; i < flushed; ++i) {
            Op op = op_for(seed, i, size);
            std::fill(model.begin() + long(op.offset), model.begin() + long(op.offset + op.length),
                      op.discard ? 0 : op.fill);
        }
        // The child may have got through a bounded number of ops past the last report.
        for (uint64_t i = flushed; i < flushed + 100000; ++i) {
            Op op = op_for(seed, i, size);
            for (uint64_t b = op.offset; b < op.offset + op.length; b += 512) touched_later[b] = true;
            // 100000 ops is far more than the child can do in the window; stop once everything is covered.
            if (i - flushed > 4000) break;
        }
        auto dev = open_image(img, ImageOpenOptions{});
        ASSERT_TRUE(dev) << dev.error().describe();
        std::vector<uint8_t> got(size);
        ASSERT_TRUE((*dev)->read_at(0, got));
        for (uint64_t b = 0; b < size; b += 512) {
            if (touched_later[b]) continue;
            ASSERT_TRUE(std::equal(got.begin() + long(b), got.begin() + long(b + 512), model.begin() + long(b)))
                << "trial " << trial << ": flushed data lost at offset " << b << " (flushed through op " << flushed
                << ")";
        }
    }
    // The kill moments must land mid-workload, after flushes, for the test to mean anything.
    EXPECT_GE(trials_with_flushed_data, 15);
}

// ---------------------------------------------------------------------------------------------
// Metadata used as guest data: `corral-img check` against `qemu-img check` on the same files.

/// The fields of a qemu-img-made image that the crafted cases point at.
struct Layout {
    uint64_t l1_offset, refcount_table, refcount_block, l2_table;
};

uint64_t read_be64_at(const std::string& path, uint64_t offset) {
    auto file = *File::open(path, Access::ReadOnly);
    uint8_t raw[8];
    EXPECT_TRUE(file.read_exact(offset, raw));
    return load_be64(raw);
}

void write_be64_at(const std::string& path, uint64_t offset, uint64_t value) {
    auto file = *File::open(path, Access::ReadWrite);
    uint8_t raw[8];
    store_be64(raw, value);
    EXPECT_TRUE(file.write_all(offset, raw));
}

Layout layout_of(const std::string& path) {
    constexpr uint64_t offset_mask = 0x00fffffffffffe00ull;
    Layout l{};
    l.l1_offset = read_be64_at(path, 40);
    l.refcount_table = read_be64_at(path, 48);
    l.refcount_block = read_be64_at(path, l.refcount_table) & offset_mask;
    l.l2_table = read_be64_at(path, l.l1_offset) & offset_mask;
    return l;
}

struct Crafted {
    const char* name;
    const char* what;  ///< corral-img's words for the structure hit
    /// The entry to overwrite (offset in the file) and its new value, from the layout.
    std::pair<uint64_t, uint64_t> (*entry)(const Layout&);
};

void PrintTo(const Crafted& c, std::ostream* os) { *os << c.name; }  // for ctest's test names

constexpr uint64_t k_copied = 1ull << 63;
constexpr uint64_t k_compressed = 1ull << 62;

class MetadataAsData : public ::testing::TestWithParam<Crafted> {};

// Guest cluster 0's L2 entry (or the first L1 entry) is made to point at a metadata structure;
// guest data at 1 MiB (0xbb) sits in another cluster of the same L2 table.
TEST_P(MetadataAsData, IsACorruptionLikeQemuSaysAndRepairDropsTheEntry) {
    REQUIRE_QEMU_IMG();
    TempDir dir;
    const std::string img = dir.path("img.qcow2");
    ASSERT_EQ(run("qemu-img create -q -f qcow2 " + img + " 64M"), 0);
    ASSERT_EQ(run("qemu-io -c 'write -P 0xaa 0 64k' -c 'write -P 0xbb 1M 64k' " + img), 0);
    const auto [where, value] = GetParam().entry(layout_of(img));
    write_be64_at(img, where, value);

    std::string qemu_out, corral_out;
    EXPECT_EQ(run("qemu-img check " + img, &qemu_out), 2) << qemu_out;
    EXPECT_EQ(run(std::string(CORRAL_IMG_PATH) + " check " + img, &corral_out), 2) << corral_out;
    EXPECT_NE(corral_out.find(GetParam().what), std::string::npos) << "want '" << GetParam().what << "' in\n"
                                                                   << corral_out;

    // The repair leaves an image both tools pass, whose guest cluster 0 is no longer metadata.
    EXPECT_EQ(run(std::string(CORRAL_IMG_PATH) + " check --repair " + img, &corral_out), 0) << corral_out;
    EXPECT_EQ(run("qemu-img check " + img, &qemu_out), 0) << qemu_out;
    EXPECT_EQ(run(std::string(CORRAL_IMG_PATH) + " check " + img, &corral_out), 0) << corral_out;
    EXPECT_EQ(run("qemu-io -r -c 'read -P 0 0 64k' " + img, &qemu_out), 0) << qemu_out;
    EXPECT_EQ(qemu_out.find("verification failed"), std::string::npos) << qemu_out;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, MetadataAsData,
    ::testing::Values(
        // A normal L2 entry cannot name offset 0 (that is "unallocated"); a compressed one can.
        Crafted{"compressed_data_in_header", "lies on the header",
                [](const Layout& l) { return std::pair{l.l2_table, k_compressed | 0x100}; }},
        Crafted{"data_on_l1_table", "is the L1 table",
                [](const Layout& l) { return std::pair{l.l2_table, k_copied | l.l1_offset}; }},
        Crafted{"data_on_refcount_table", "is the refcount table",
                [](const Layout& l) { return std::pair{l.l2_table, k_copied | l.refcount_table}; }},
        Crafted{"data_on_refcount_block", "is a refcount block",
                [](const Layout& l) { return std::pair{l.l2_table, k_copied | l.refcount_block}; }},
        Crafted{"data_on_its_own_l2_table", "is an L2 table",
                [](const Layout& l) { return std::pair{l.l2_table, k_copied | l.l2_table}; }},
        Crafted{"l2_table_on_refcount_table", "L1 entry 0: L2 table at",
                [](const Layout& l) { return std::pair{l.l1_offset, k_copied | l.refcount_table}; }}),
    [](const auto& info) { return std::string(info.param.name); });

// `qemu-img check -r all` counts a data cluster on the L1 table as a second reference and raises
// the refcount: qemu-img then calls the image clean, though guest cluster 0 still reads (and a
// copy-on-write would copy) the L1 table. corral-img still calls it a corruption, and repairs it.
TEST(QemuInterop, DataOnTheL1TableStaysACorruptionAfterQemuRepairedTheRefcounts) {
    REQUIRE_QEMU_IMG();
    TempDir dir;
    const std::string img = dir.path("img.qcow2");
    ASSERT_EQ(run("qemu-img create -q -f qcow2 " + img + " 64M"), 0);
    ASSERT_EQ(run("qemu-io -c 'write -P 0xaa 0 64k' -c 'write -P 0xbb 1M 64k' " + img), 0);
    const Layout l = layout_of(img);
    write_be64_at(img, l.l2_table, k_copied | l.l1_offset);
    std::string out;
    ASSERT_EQ(run("qemu-img check -r all " + img, &out), 0) << out;
    ASSERT_EQ(run("qemu-img check " + img, &out), 0) << "qemu-img's own repair is expected to pass:\n" << out;

    EXPECT_EQ(run(std::string(CORRAL_IMG_PATH) + " check " + img, &out), 2) << out;
    EXPECT_NE(out.find("is the L1 table"), std::string::npos) << out;
    EXPECT_EQ(run(std::string(CORRAL_IMG_PATH) + " check --repair " + img, &out), 0) << out;
    EXPECT_EQ(run(std::string(CORRAL_IMG_PATH) + " check " + img, &out), 0) << out;
    EXPECT_EQ(run("qemu-img check " + img, &out), 0) << out;
    EXPECT_EQ(run("qemu-io -r -c 'read -P 0 0 64k' -c 'read -P 0xbb 1M 64k' " + img, &out), 0) << out;
    EXPECT_EQ(out.find("verification failed"), std::string::npos) << out;
}

}  // namespace
}  // namespace corral::storage
