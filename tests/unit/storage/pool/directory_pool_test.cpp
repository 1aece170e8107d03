#include "storage/pool/directory_pool.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "../shell_run.h"
#include "../test_dir.h"
#include "storage/image.h"

namespace corral::storage::pool {
namespace {

using storage::testing::Command;
using storage::testing::have_qemu_img;
using storage::testing::run;
using storage::testing::TestDir;
namespace fs = std::filesystem;

constexpr uint64_t k_mib = 1u << 20;

#define REQUIRE_QEMU_IMG() \
    if (!have_qemu_img())  \
    GTEST_SKIP() << "qemu-img (qemu-utils) is not installed; it is the oracle here"

void expect_qemu_check_clean(const std::string& path) {
    Command c = run("qemu-img check -f qcow2 '" + path + "'");
    EXPECT_EQ(c.status, 0) << "qemu-img check " << path << ":\n" << c.output;
}

void expect_same_content(const std::string& a, const std::string& b) {
    Command c = run("qemu-img compare '" + a + "' '" + b + "'");
    EXPECT_EQ(c.status, 0) << "qemu-img compare " << a << " " << b << ":\n" << c.output;
}

nlohmann::json qemu_info(const std::string& path) {
    Command c = run("qemu-img info --output=json '" + path + "'");
    EXPECT_EQ(c.status, 0) << c.output;
    return nlohmann::json::parse(c.output, nullptr, false);
}

std::unique_ptr<DirectoryPool> open_pool(const std::string& folder,
                                         const std::string& name = "default") {
    auto pool = DirectoryPool::open(name, folder, MissingFolder::Create);
    EXPECT_TRUE(pool) << pool.error().describe();
    return pool ? std::move(*pool) : nullptr;
}

std::vector<uint8_t> pattern(size_t size, uint8_t seed) {
    std::vector<uint8_t> data(size);
    for (size_t i = 0; i < size; ++i)
        data[i] = uint8_t(seed + i * 7 + (i >> 12));
    return data;
}

void write_volume(const std::string& path, uint64_t offset, const std::vector<uint8_t>& data) {
    ImageOpenOptions o;
    o.access = Access::ReadWrite;
    auto dev = open_image(path, o);
    ASSERT_TRUE(dev) << dev.error().describe();
    ASSERT_TRUE((*dev)->write_at(offset, data));
    ASSERT_TRUE((*dev)->flush());
}

std::vector<uint8_t> read_volume(const std::string& path, uint64_t offset, size_t length) {
    auto dev = open_image(path, ImageOpenOptions{});
    EXPECT_TRUE(dev) << dev.error().describe();
    std::vector<uint8_t> out(length);
    if (dev) {
        EXPECT_TRUE((*dev)->read_at(offset, out));
    }
    return out;
}

std::vector<std::string> files_in(const std::string& folder) {
    std::vector<std::string> names;
    for (auto& e : fs::directory_iterator(folder))
        names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

template <typename T>
int error_of(const Result<T>& r) {
    return r ? 0 : r.error().errno_value();
}

TEST(DirectoryPool, CreateListInfoDelete) {
    REQUIRE_QEMU_IMG();
    TestDir dir;
    auto pool = open_pool(dir.path("pool"));
    EXPECT_EQ(pool->name(), "default");
    EXPECT_EQ(pool->driver(), "dir");
    EXPECT_EQ(pool->path(), dir.path("pool"));

    auto a = pool->create_volume("web1-root", 16 * k_mib, ImageFormat::Qcow2);
    ASSERT_TRUE(a) << a.error().describe();
    EXPECT_EQ(a->name, "web1-root");
    EXPECT_EQ(a->format, ImageFormat::Qcow2);
    EXPECT_EQ(a->size_bytes, 16 * k_mib);
    EXPECT_EQ(a->path, dir.path("pool/web1-root.qcow2"));
    EXPECT_FALSE(a->backing);
    EXPECT_GT(a->allocation_bytes, 0u);
    EXPECT_LT(a->allocation_bytes, 1 * k_mib);
    expect_qemu_check_clean(a->path);
    EXPECT_EQ(qemu_info(a->path)["virtual-size"], 16 * k_mib);

    auto b = pool->create_volume("data", 8 * k_mib, ImageFormat::Raw);
    ASSERT_TRUE(b) << b.error().describe();
    EXPECT_EQ(b->path, dir.path("pool/data.raw"));
    EXPECT_EQ(b->allocation_bytes, 0u);  // sparse
    EXPECT_EQ(qemu_info(b->path)["format"], "raw");
    EXPECT_EQ(qemu_info(b->path)["virtual-size"], 8 * k_mib);

    auto list = pool->list_volumes();
    ASSERT_TRUE(list) << list.error().describe();
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ((*list)[0].name, "data");
    EXPECT_EQ((*list)[0].format, ImageFormat::Raw);
    EXPECT_EQ((*list)[1].name, "web1-root");
    EXPECT_EQ((*list)[1].size_bytes, 16 * k_mib);

    auto usage = pool->usage();
    ASSERT_TRUE(usage);
    EXPECT_GT(usage->capacity_bytes, 0u);
    EXPECT_LE(usage->available_bytes, usage->capacity_bytes);
    EXPECT_EQ(usage->allocation_bytes, (*list)[0].allocation_bytes + (*list)[1].allocation_bytes);

    auto info = pool->volume_info("web1-root");
    ASSERT_TRUE(info);
    EXPECT_EQ(info->size_bytes, 16 * k_mib);

    ASSERT_TRUE(pool->delete_volume("web1-root"));
    EXPECT_FALSE(fs::exists(dir.path("pool/web1-root.qcow2")));
    auto gone = pool->volume_info("web1-root");
    EXPECT_EQ(error_of(gone), ENOENT);
    EXPECT_NE(gone.error().message().find("no volume 'web1-root'"), std::string::npos)
        << gone.error().message();
    EXPECT_EQ(error_of(pool->delete_volume("web1-root")), ENOENT);
    EXPECT_EQ(pool->list_volumes()->size(), 1u);
    EXPECT_EQ(files_in(dir.path("pool")), std::vector<std::string>{"data.raw"});
}

TEST(DirectoryPool, OtherFilesInTheFolderAreNotVolumes) {
    TestDir dir;
    auto pool = open_pool(dir.dir());
    std::ofstream(dir.path("README")) << "hi";
    std::ofstream(dir.path("Bad_Name.qcow2")) << "x";
    std::ofstream(dir.path(".hidden.raw")) << "x";
    fs::create_directory(dir.path("sub.raw"));
    ASSERT_TRUE(pool->create_volume("a", 1 * k_mib, ImageFormat::Raw));
    auto list = pool->list_volumes();
    ASSERT_TRUE(list) << list.error().describe();
    ASSERT_EQ(list->size(), 1u);
    EXPECT_EQ((*list)[0].name, "a");
}

TEST(DirectoryPool, DuplicateNameIsEExistAndLeavesNothing) {
    TestDir dir;
    auto pool = open_pool(dir.dir());
    ASSERT_TRUE(pool->create_volume("vol", 1 * k_mib, ImageFormat::Qcow2));
    for (ImageFormat f : {ImageFormat::Qcow2, ImageFormat::Raw}) {
        auto again = pool->create_volume("vol", 2 * k_mib, f);
        EXPECT_EQ(error_of(again), EEXIST);
        EXPECT_NE(again.error().message().find("already exists"), std::string::npos);
    }
    EXPECT_EQ(error_of(pool->clone_volume("vol", "vol", CloneMode::Linked, {})), EEXIST);
    EXPECT_EQ(error_of(pool->clone_volume("vol", "vol", CloneMode::Full, {})), EEXIST);
    EXPECT_EQ(files_in(dir.dir()), std::vector<std::string>{"vol.qcow2"});
    EXPECT_EQ(pool->volume_info("vol")->size_bytes, 1 * k_mib);
}

TEST(DirectoryPool, BadNamesAreRejectedWithTheRule) {
    TestDir dir;
    auto pool = open_pool(dir.dir());
    for (std::string bad : std::vector<std::string>{"", "Web", "1abc", "-abc", "abc-", "a_b", "a.b",
                                                    "../x", "a/b", std::string(64, 'a')}) {
        auto r = pool->create_volume(bad, 1 * k_mib, ImageFormat::Qcow2);
        ASSERT_FALSE(r) << "'" << bad << "' was accepted";
        EXPECT_EQ(r.error().errno_value(), EINVAL) << bad;
        EXPECT_NE(r.error().message().find("volume name"), std::string::npos)
            << r.error().message();
        EXPECT_NE(r.error().message().find(
                      "1 to 63 characters, lowercase letters, digits and '-', starting with a "
                      "letter, not ending with '-'"),
                  std::string::npos)
            << r.error().message();
        EXPECT_EQ(error_of(pool->volume_info(bad)), EINVAL) << bad;
        EXPECT_EQ(error_of(pool->import_volume(bad, dir.path("x"), {})), EINVAL) << bad;
    }
    for (std::string good :
         std::vector<std::string>{"a", "web1-root", "a-1-b", std::string(63, 'z')})
        EXPECT_TRUE(pool->create_volume(good, 1 * k_mib, ImageFormat::Raw)) << good;
    EXPECT_EQ(error_of(DirectoryPool::open("Default", dir.dir(), MissingFolder::Fail)), EINVAL);
    std::ofstream(dir.path("file")) << "x";
    EXPECT_EQ(error_of(DirectoryPool::open("p", dir.path("file"), MissingFolder::Fail)), ENOTDIR);
    EXPECT_EQ(error_of(DirectoryPool::open("p", dir.path("missing"), MissingFolder::Fail)), ENOENT);
}

TEST(DirectoryPool, BadSizesAreRejected) {
    TestDir dir;
    auto pool = open_pool(dir.dir());
    for (uint64_t size : {uint64_t(0), uint64_t(1000), uint64_t(1) << 62}) {
        auto r = pool->create_volume("v", size, ImageFormat::Qcow2);
        EXPECT_EQ(error_of(r), EINVAL) << size;
        if (!r) {
            EXPECT_NE(r.error().message().find("size_bytes"), std::string::npos);
        }
    }
    EXPECT_TRUE(files_in(dir.dir()).empty());
}

TEST(DirectoryPool, FailingCreateLeavesNoFile) {
    TestDir dir;
    auto pool = open_pool(dir.path("pool"));
    // A qcow2 whose last data cluster was cut off: the import fails half-way through the copy.
    std::string broken = dir.path("broken.qcow2");
    ImageCreateOptions o;
    o.size = 8 * k_mib;
    ASSERT_TRUE(create_image(broken, o));
    write_volume(broken, 0, pattern(64 * 1024, 1));
    write_volume(broken, 6 * k_mib, pattern(64 * 1024, 2));
    ASSERT_EQ(::truncate(broken.c_str(), off_t(fs::file_size(broken) - 64 * 1024)), 0);
    auto r = pool->import_volume("imported", broken, {});
    ASSERT_FALSE(r) << "importing a truncated image succeeded";
    // It failed while copying, after the temporary file was created.
    EXPECT_NE(r.error().message().find("importing '" + broken + "'"), std::string::npos)
        << r.error().describe();
    EXPECT_TRUE(files_in(dir.path("pool")).empty());
    // A full clone whose source vanished mid-way is covered by the same path; a linked clone of
    // a missing source fails before writing anything.
    EXPECT_EQ(error_of(pool->clone_volume("nothing", "c", CloneMode::Linked, {})), ENOENT);
    EXPECT_EQ(error_of(pool->clone_volume("nothing", "c", CloneMode::Full, {})), ENOENT);
    EXPECT_TRUE(files_in(dir.path("pool")).empty());
}

TEST(DirectoryPool, LinkedCloneReadsTheSourceAndWritesOnlyItself) {
    REQUIRE_QEMU_IMG();
    TestDir dir;
    auto pool = open_pool(dir.path("pool"));
    auto base = pool->create_volume("base", 16 * k_mib, ImageFormat::Qcow2);
    ASSERT_TRUE(base);
    auto a = pattern(256 * 1024, 1), b = pattern(100000, 9);
    write_volume(base->path, 0, a);
    write_volume(base->path, 5 * k_mib + 123, b);

    auto clone = pool->clone_volume("base", "web1-root", CloneMode::Linked, {});
    ASSERT_TRUE(clone) << clone.error().describe();
    EXPECT_EQ(clone->format, ImageFormat::Qcow2);
    EXPECT_EQ(clone->size_bytes, 16 * k_mib);
    ASSERT_TRUE(clone->backing);
    EXPECT_EQ(clone->backing->volume, std::optional<std::string>("base"));
    EXPECT_EQ(clone->backing->path, base->path);
    EXPECT_EQ(clone->backing->format, std::optional(ImageFormat::Qcow2));
    EXPECT_LT(clone->allocation_bytes, 1 * k_mib);

    EXPECT_EQ(read_volume(clone->path, 0, a.size()), a);
    EXPECT_EQ(read_volume(clone->path, 5 * k_mib + 123, b.size()), b);
    expect_same_content(base->path, clone->path);

    auto c = pattern(70000, 50);
    write_volume(clone->path, 1000, c);
    EXPECT_EQ(read_volume(clone->path, 1000, c.size()), c);
    EXPECT_EQ(read_volume(base->path, 0, a.size()), a);  // the source is untouched

    auto info = qemu_info(clone->path);
    EXPECT_EQ(info["backing-filename"], "base.qcow2");
    EXPECT_EQ(info["backing-filename-format"], "qcow2");
    EXPECT_EQ(info["full-backing-filename"], base->path);
    expect_qemu_check_clean(base->path);
    expect_qemu_check_clean(clone->path);

    // Over a raw volume, the backing format says raw.
    ASSERT_TRUE(pool->create_volume("rawbase", 4 * k_mib, ImageFormat::Raw));
    auto over_raw = pool->clone_volume("rawbase", "over-raw", CloneMode::Linked, {});
    ASSERT_TRUE(over_raw) << over_raw.error().describe();
    EXPECT_EQ(over_raw->backing->format, std::optional(ImageFormat::Raw));
    auto raw_info = qemu_info(over_raw->path);
    EXPECT_EQ(raw_info["backing-filename"], "rawbase.raw");
    EXPECT_EQ(raw_info["backing-filename-format"], "raw");
    expect_qemu_check_clean(over_raw->path);
}

TEST(DirectoryPool, DeletingABaseWithALinkedCloneIsBusy) {
    TestDir dir;
    auto pool = open_pool(dir.dir());
    ASSERT_TRUE(pool->create_volume("base", 4 * k_mib, ImageFormat::Qcow2));
    ASSERT_TRUE(pool->clone_volume("base", "c1", CloneMode::Linked, {}));
    ASSERT_TRUE(pool->clone_volume("c1", "c2", CloneMode::Linked, {}));
    EXPECT_EQ(pool->volume_info("base")->clones, std::vector<std::string>{"c1"});
    auto list = pool->list_volumes();
    ASSERT_TRUE(list);
    EXPECT_EQ((*list)[0].name, "base");
    EXPECT_EQ((*list)[0].clones, std::vector<std::string>{"c1"});
    EXPECT_EQ((*list)[1].clones, std::vector<std::string>{"c2"});

    auto r = pool->delete_volume("base");
    EXPECT_EQ(error_of(r), EBUSY);
    EXPECT_NE(r.error().message().find("c1"), std::string::npos) << r.error().message();
    EXPECT_EQ(error_of(pool->delete_volume("c1")), EBUSY);
    EXPECT_TRUE(fs::exists(dir.path("base.qcow2")));
    ASSERT_TRUE(pool->delete_volume("c2"));
    ASSERT_TRUE(pool->delete_volume("c1"));
    ASSERT_TRUE(pool->delete_volume("base"));
    EXPECT_TRUE(files_in(dir.dir()).empty());
}

TEST(DirectoryPool, FullCloneEqualsTheSourceAndStaysSparse) {
    REQUIRE_QEMU_IMG();
    TestDir dir;
    auto pool = open_pool(dir.dir());
    auto base = pool->create_volume("base", 64 * k_mib, ImageFormat::Qcow2);
    ASSERT_TRUE(base);
    write_volume(base->path, 0, pattern(64 * 1024, 3));
    write_volume(base->path, 40 * k_mib + 17, pattern(5000, 4));
    write_volume(base->path, 10 * k_mib, std::vector<uint8_t>(4 * k_mib, 0));  // allocated zeros

    auto copy = pool->clone_volume("base", "copy", CloneMode::Full, {});
    ASSERT_TRUE(copy) << copy.error().describe();
    EXPECT_EQ(copy->format, ImageFormat::Qcow2);
    EXPECT_FALSE(copy->backing);
    EXPECT_EQ(copy->size_bytes, 64 * k_mib);
    expect_same_content(base->path, copy->path);
    expect_qemu_check_clean(copy->path);
    // Two data clusters and metadata; the zeros and the untouched space are not allocated.
    EXPECT_LT(copy->allocation_bytes, 1 * k_mib) << "the full copy is not sparse";

    // A full copy of a linked clone stands alone.
    ASSERT_TRUE(pool->clone_volume("base", "linked", CloneMode::Linked, {}));
    write_volume(dir.path("linked.qcow2"), 20 * k_mib, pattern(3000, 5));
    auto flat = pool->clone_volume("linked", "flat", CloneMode::Full, {});
    ASSERT_TRUE(flat) << flat.error().describe();
    EXPECT_FALSE(flat->backing);
    EXPECT_FALSE(qemu_info(flat->path).contains("backing-filename"));
    expect_same_content(dir.path("linked.qcow2"), flat->path);
    expect_qemu_check_clean(flat->path);

    // Raw stays raw, with holes.
    auto raw = pool->create_volume("rawsrc", 32 * k_mib, ImageFormat::Raw);
    ASSERT_TRUE(raw);
    write_volume(raw->path, 8 * k_mib, pattern(8192, 6));
    auto raw_copy = pool->clone_volume("rawsrc", "rawcopy", CloneMode::Full, {});
    ASSERT_TRUE(raw_copy) << raw_copy.error().describe();
    EXPECT_EQ(raw_copy->format, ImageFormat::Raw);
    EXPECT_LE(raw_copy->allocation_bytes, 64 * 1024u);
    expect_same_content(raw->path, raw_copy->path);
}

TEST(DirectoryPool, ResizeGrowsAndRefusesToShrink) {
    REQUIRE_QEMU_IMG();
    TestDir dir;
    auto pool = open_pool(dir.dir());
    ASSERT_TRUE(pool->create_volume("q", 16 * k_mib, ImageFormat::Qcow2));
    ASSERT_TRUE(pool->create_volume("r", 16 * k_mib, ImageFormat::Raw));
    for (const char* name : {"q", "r"}) {
        auto grown = pool->resize_volume(name, 48 * k_mib);
        ASSERT_TRUE(grown) << grown.error().describe();
        EXPECT_EQ(grown->size_bytes, 48 * k_mib);
        EXPECT_EQ(qemu_info(grown->path)["virtual-size"], 48 * k_mib);
        auto same = pool->resize_volume(name, 48 * k_mib);
        EXPECT_TRUE(same);
        auto shrink = pool->resize_volume(name, 8 * k_mib);
        ASSERT_FALSE(shrink);
        EXPECT_EQ(shrink.error().errno_value(), EINVAL);
        EXPECT_NE(shrink.error().message().find("cannot shrink"), std::string::npos)
            << shrink.error().message();
        EXPECT_EQ(pool->volume_info(name)->size_bytes, 48 * k_mib);
    }
    expect_qemu_check_clean(dir.path("q.qcow2"));
    EXPECT_EQ(error_of(pool->resize_volume("nope", 48 * k_mib)), ENOENT);
}

TEST(DirectoryPool, ImportRawAndQemuQcow2AndExportRaw) {
    REQUIRE_QEMU_IMG();
    TestDir dir;
    auto pool = open_pool(dir.path("pool"));
    // A sparse raw file with data at a few places.
    std::string raw = dir.path("disk.img");
    {
        std::ofstream(raw).close();
        ASSERT_EQ(::truncate(raw.c_str(), off_t(24 * k_mib)), 0);
    }
    write_volume(raw, 0, pattern(4096, 7));
    write_volume(raw, 9 * k_mib + 5, pattern(200000, 8));

    auto imported = pool->import_volume("from-raw", raw, {});
    ASSERT_TRUE(imported) << imported.error().describe();
    EXPECT_EQ(imported->format, ImageFormat::Qcow2);
    EXPECT_EQ(imported->size_bytes, 24 * k_mib);
    EXPECT_LT(imported->allocation_bytes, 2 * k_mib);
    expect_qemu_check_clean(imported->path);
    expect_same_content(raw, imported->path);

    std::string qemu_made = dir.path("qemu.qcow2");
    Command c = run("qemu-img convert -f raw -O qcow2 '" + raw + "' '" + qemu_made + "'");
    ASSERT_EQ(c.status, 0) << c.output;
    auto from_qcow2 = pool->import_volume("from-qcow2", qemu_made, {});
    ASSERT_TRUE(from_qcow2) << from_qcow2.error().describe();
    EXPECT_EQ(from_qcow2->format, ImageFormat::Qcow2);
    expect_qemu_check_clean(from_qcow2->path);
    expect_same_content(qemu_made, from_qcow2->path);

    std::string out = dir.path("out.raw");
    auto exported = pool->export_volume("from-qcow2", out, ImageFormat::Raw, {});
    ASSERT_TRUE(exported) << exported.error().describe();
    EXPECT_EQ(qemu_info(out)["format"], "raw");
    EXPECT_EQ(fs::file_size(out), 24 * k_mib);
    Command cmp = run("cmp '" + raw + "' '" + out + "'");
    EXPECT_EQ(cmp.status, 0) << cmp.output;
    expect_same_content(raw, out);

    std::string out_q = dir.path("out.qcow2");
    ASSERT_TRUE(pool->export_volume("from-raw", out_q, ImageFormat::Qcow2, {}));
    expect_qemu_check_clean(out_q);
    expect_same_content(raw, out_q);

    EXPECT_EQ(error_of(pool->export_volume("from-raw", out, ImageFormat::Raw, {})), EEXIST);
    EXPECT_EQ(error_of(pool->export_volume("nope", dir.path("x"), ImageFormat::Raw, {})), ENOENT);
    EXPECT_EQ(error_of(pool->export_volume("from-raw", dir.path("no/such/dir.raw"),
                                           ImageFormat::Raw, {})),
              EINVAL);
    EXPECT_EQ(error_of(pool->import_volume("x", dir.path("missing.img"), {})), EINVAL);
    EXPECT_EQ(error_of(pool->import_volume("from-raw", raw, {})), EEXIST);
    EXPECT_EQ(files_in(dir.dir()),
              (std::vector<std::string>{"disk.img", "out.qcow2", "out.raw", "pool", "qemu.qcow2"}));
    EXPECT_EQ(files_in(dir.path("pool")),
              (std::vector<std::string>{"from-qcow2.qcow2", "from-raw.qcow2"}));
}

TEST(DirectoryPool, ProgressIsMonotonicAndEndsAtTotal) {
    TestDir dir;
    auto pool = open_pool(dir.dir());
    const uint64_t size = 256 * k_mib;
    auto base = pool->create_volume("base", size, ImageFormat::Raw);
    ASSERT_TRUE(base);
    for (uint64_t at = 0; at < size; at += 16 * k_mib)
        write_volume(base->path, at, pattern(1 * k_mib, uint8_t(at >> 20)));

    for (CloneMode mode : {CloneMode::Full, CloneMode::Linked}) {
        std::vector<std::pair<uint64_t, uint64_t>> calls;
        auto start = std::chrono::steady_clock::now();
        auto r = pool->clone_volume("base", mode == CloneMode::Full ? "full" : "linked", mode,
                                    [&](uint64_t done, uint64_t total) {
                                        calls.push_back({done, total});
                                        return Proceed::Continue;
                                    });
        double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        ASSERT_TRUE(r) << r.error().describe();
        ASSERT_FALSE(calls.empty());
        for (size_t i = 0; i < calls.size(); ++i) {
            EXPECT_EQ(calls[i].second, size);
            if (i > 0) {
                EXPECT_GE(calls[i].first, calls[i - 1].first);
            }
        }
        EXPECT_EQ(calls.back().first, size);
        // At most ~10 a second, plus the first and the last.
        EXPECT_LE(double(calls.size()), seconds * 10 + 2)
            << calls.size() << " calls in " << seconds << " s";
    }
    expect_same_content(base->path, dir.path("full.raw"));
}

TEST(DirectoryPool, ACancelledCopyLeavesNothingBehind) {
    TestDir dir;
    auto pool = open_pool(dir.path("pool"));
    auto base = pool->create_volume("base", 64 * k_mib, ImageFormat::Raw);
    ASSERT_TRUE(base);
    for (uint64_t at = 0; at < 64 * k_mib; at += 4 * k_mib) write_volume(base->path, at, pattern(1 * k_mib, 7));
    // Cancelled at its first report, once the target file exists (copy_progress_test.cpp cancels
    // a copy half-way); the pool removes the file it was writing.
    auto cancel_at_once = [] { return [](uint64_t, uint64_t) { return Proceed::Cancel; }; };
    EXPECT_EQ(error_of(pool->clone_volume("base", "full", CloneMode::Full, cancel_at_once())), ECANCELED);
    EXPECT_EQ(error_of(pool->import_volume("imported", base->path, cancel_at_once())), ECANCELED);
    EXPECT_EQ(error_of(pool->export_volume("base", dir.path("out.raw"), ImageFormat::Raw, cancel_at_once())),
              ECANCELED);
    EXPECT_EQ(error_of(pool->volume_info("full")), ENOENT);
    EXPECT_EQ(error_of(pool->volume_info("imported")), ENOENT);
    EXPECT_EQ(files_in(dir.path("pool")), (std::vector<std::string>{"base.raw"}));
    EXPECT_EQ(files_in(dir.dir()), (std::vector<std::string>{"pool"}));
}

TEST(DirectoryPool, MovingThePoolFolderKeepsLinkedClonesReadable) {
    REQUIRE_QEMU_IMG();
    TestDir dir;
    auto data = pattern(300000, 11);
    {
        auto pool = open_pool(dir.path("old"));
        auto base = pool->create_volume("base", 8 * k_mib, ImageFormat::Qcow2);
        ASSERT_TRUE(base);
        write_volume(base->path, 1 * k_mib, data);
        ASSERT_TRUE(pool->clone_volume("base", "clone", CloneMode::Linked, {}));
    }
    fs::rename(dir.path("old"), dir.path("new"));
    auto pool = open_pool(dir.path("new"));
    auto clone = pool->volume_info("clone");
    ASSERT_TRUE(clone) << clone.error().describe();
    EXPECT_EQ(clone->path, dir.path("new/clone.qcow2"));
    ASSERT_TRUE(clone->backing);
    EXPECT_EQ(clone->backing->volume, std::optional<std::string>("base"));
    EXPECT_EQ(clone->backing->path, dir.path("new/base.qcow2"));
    EXPECT_EQ(read_volume(clone->path, 1 * k_mib, data.size()), data);
    expect_same_content(dir.path("new/base.qcow2"), clone->path);
    expect_qemu_check_clean(clone->path);
    EXPECT_EQ(error_of(pool->delete_volume("base")), EBUSY);
}

// The files a local user could have planted symlinks at: every name an earlier corral used for
// its temporary files (".FILE.corral-tmp-PID-N", a per-process counter), pointing at a victim.
std::vector<std::string> plant_old_temp_names(const std::string& final_path, const std::string& victim) {
    fs::path p(final_path);
    std::vector<std::string> planted;
    for (int n = 0; n < 512; ++n) {
        std::string name = (p.parent_path() / fmt::format(".{}.corral-tmp-{}-{}", p.filename().string(), ::getpid(), n))
                               .string();
        fs::create_symlink(victim, name);
        planted.push_back(name);
    }
    return planted;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST(DirectoryPool, PlantedSymlinksAtTemporaryNamesAreNeverFollowed) {
    TestDir dir;
    auto pool = open_pool(dir.path("pool"));
    ASSERT_TRUE(pool);
    const std::string victim = dir.path("victim");
    std::ofstream(victim) << "precious";
    fs::create_directory(dir.path("out"));
    plant_old_temp_names(dir.path("pool/data.raw"), victim);
    plant_old_temp_names(dir.path("pool/data.qcow2"), victim);
    plant_old_temp_names(dir.path("pool/copy.raw"), victim);
    plant_old_temp_names(dir.path("out/disk.raw"), victim);

    auto created = pool->create_volume("data", 1 * k_mib, ImageFormat::Raw);
    ASSERT_TRUE(created) << created.error().describe();
    auto copied = pool->clone_volume("data", "copy", CloneMode::Full, {});
    ASSERT_TRUE(copied) << copied.error().describe();
    auto exported = pool->export_volume("data", dir.path("out/disk.raw"), ImageFormat::Raw, {});
    ASSERT_TRUE(exported) << exported.error().describe();

    const std::string victim_now = read_file(victim);
    EXPECT_TRUE(victim_now == "precious") << "the victim was overwritten: now " << victim_now.size() << " bytes";
    struct stat st {};
    ASSERT_EQ(::lstat(dir.path("out/disk.raw").c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_size, off_t(k_mib));
}

TEST(DirectoryPool, ASymlinkAtTheExportDestinationIsNotFollowed) {
    TestDir dir;
    auto pool = open_pool(dir.path("pool"));
    ASSERT_TRUE(pool);
    const std::string victim = dir.path("victim");
    std::ofstream(victim) << "precious";
    ASSERT_TRUE(pool->create_volume("data", 1 * k_mib, ImageFormat::Raw));
    fs::create_symlink(victim, dir.path("disk.raw"));
    for (ImageFormat format : {ImageFormat::Raw, ImageFormat::Qcow2})
        EXPECT_EQ(error_of(pool->export_volume("data", dir.path("disk.raw"), format, {})), EEXIST);
    EXPECT_EQ(read_file(victim), "precious");
    EXPECT_TRUE(fs::is_symlink(dir.path("disk.raw")));
}

TEST(DirectoryPool, GuestDataIsPrivateToCorrald) {
    TestDir dir;
    mode_t old_umask = ::umask(0);  // the modes must not depend on the caller's umask
    auto pool = open_pool(dir.path("pools/default"));
    ASSERT_TRUE(pool);
    ASSERT_TRUE(pool->create_volume("a", 1 * k_mib, ImageFormat::Raw));
    ASSERT_TRUE(pool->create_volume("b", 1 * k_mib, ImageFormat::Qcow2));
    ASSERT_TRUE(pool->clone_volume("b", "c", CloneMode::Linked, {}));
    ASSERT_TRUE(pool->clone_volume("a", "d", CloneMode::Full, {}));
    ASSERT_TRUE(pool->import_volume("e", dir.path("pools/default/a.raw"), {}));
    ASSERT_TRUE(pool->export_volume("b", dir.path("b.qcow2"), ImageFormat::Qcow2, {}));
    ASSERT_TRUE(pool->export_volume("a", dir.path("a.raw"), ImageFormat::Raw, {}));
    ::umask(old_umask);
    auto mode = [](const std::string& path) {
        struct stat st {};
        EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
        return st.st_mode & 07777;
    };
    EXPECT_EQ(mode(dir.path("pools/default")), 0750u);
    for (const char* file : {"a.raw", "b.qcow2", "c.qcow2", "d.raw", "e.qcow2"})
        EXPECT_EQ(mode(dir.path(std::string("pools/default/") + file)), 0600u) << file;
    EXPECT_EQ(mode(dir.path("b.qcow2")), 0600u);
    EXPECT_EQ(mode(dir.path("a.raw")), 0600u);
}

}  // namespace
}  // namespace corral::storage::pool
