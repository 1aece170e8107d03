#include "storage/backup/operations.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "backup_test_util.h"
#include "storage/backup/backup_key.h"

namespace corral::storage::backup {
namespace {

using namespace testing;
namespace fs = std::filesystem;

#define REQUIRE_QEMU_IMG() \
    if (!have_qemu_img())  \
    GTEST_SKIP() << "qemu-img (qemu-utils) is not installed; it is the oracle here"

constexpr int64_t k_day = 86400;
constexpr int64_t k_2026_12_01 = 1796083200;  // a Tuesday, 00:00 UTC

/// A repository in a temporary folder, and a few images with known content.
class Backups : public ::testing::Test {
protected:
    void SetUp() override {
        repo_path = dir.path("repo");
        auto created = Repository::create(repo_path, options);
        ASSERT_TRUE(created) << created.error().describe();
        reopen();
    }
    void reopen() {
        auto opened = Repository::open(repo_path, options.key_file);
        ASSERT_TRUE(opened) << opened.error().describe();
        repo.emplace(std::move(*opened));
    }
    /// A 64 MiB qcow2 with 4 MiB of random data at 8 MiB and 1 MiB at 40 MiB (the rest unallocated).
    std::string sparse_qcow2(const std::string& name, uint64_t seed) {
        const std::string path = dir.path(name);
        make_image(path, ImageFormat::Qcow2, 64 * k_mib,
                   {{8 * k_mib, random_bytes(4 * k_mib, seed)}, {40 * k_mib, random_bytes(k_mib, seed + 1)}});
        return path;
    }
    BackupResult backup(const std::string& vm, std::vector<DiskSource> disks, int64_t created = 0) {
        auto result = create_backup(*repo, BackupRequest{.vm = vm, .config_json = R"({"memory":"512M"})",
                                                         .disks = std::move(disks), .created = created},
                                    nullptr);
        EXPECT_TRUE(result) << result.error().describe();
        return result ? *result : BackupResult{};
    }
    void expect_restores_to(const std::string& id, const std::string& disk, const std::string& original,
                            ImageFormat format) {
        const std::string out = dir.path("restored-" + id + "-" + disk + "." + format_name(format));
        auto restored = restore_disk(*repo, RestoreRequest{.backup = id, .disk = disk, .destination = out,
                                                           .format = format},
                                     nullptr);
        ASSERT_TRUE(restored) << restored.error().describe();
        Command c = run("qemu-img compare -q '" + original + "' '" + out + "'");
        EXPECT_EQ(c.status, 0) << "qemu-img compare " << original << " " << out << ":\n" << c.output;
        if (format == ImageFormat::Qcow2) {
            c = run("qemu-img check -q '" + out + "'");
            EXPECT_EQ(c.status, 0) << c.output;
        }
    }

    TestDir dir;
    RepositoryCreateOptions options;
    std::string repo_path;
    std::optional<Repository> repo;
};

TEST_F(Backups, FullBackupRestoresIdenticallyAndASecondOneWritesNothingNew) {
    REQUIRE_QEMU_IMG();
    const std::string disk = sparse_qcow2("root.qcow2", 1);
    BackupResult first = backup("web", {{.name = "root", .path = disk}}, k_2026_12_01);
    EXPECT_EQ(first.logical_bytes, 64 * k_mib);
    // Unallocated clusters are skipped without reading: only the 5 MiB written are read.
    EXPECT_EQ(first.read_bytes, 5 * k_mib);
    EXPECT_EQ(first.chunks, 2u);
    EXPECT_EQ(first.zero_chunks, 14u);
    EXPECT_EQ(first.new_chunks, 2u);
    EXPECT_EQ(chunk_files(repo_path), 2u);

    BackupResult second = backup("web", {{.name = "root", .path = disk}}, k_2026_12_01 + 60);
    EXPECT_NE(second.id, first.id);
    EXPECT_EQ(second.chunks, 2u);
    EXPECT_EQ(second.new_chunks, 0u);
    EXPECT_EQ(second.new_bytes, 0u);
    EXPECT_EQ(chunk_files(repo_path), 2u);

    auto list = list_backups(*repo, std::nullopt);
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ((*list)[0].state, "complete");
    EXPECT_EQ((*list)[0].vm, "web");
    EXPECT_EQ((*list)[1].new_chunks, 0u);

    auto shown = show_backup(*repo, first.id);
    ASSERT_TRUE(shown) << shown.error().describe();
    EXPECT_EQ(shown->second.config_json, R"({"memory":"512M"})");
    ASSERT_EQ(shown->second.disks.size(), 1u);
    EXPECT_EQ(shown->second.disks[0].virtual_size, 64 * k_mib);
    EXPECT_EQ(shown->second.disks[0].chunks.size(), 16u);

    expect_restores_to(first.id, "root", disk, ImageFormat::Qcow2);
    expect_restores_to(second.id, "", disk, ImageFormat::Raw);
}

TEST_F(Backups, ASnapshotOfTheDiskIsBackedUpNotWhatWasWrittenAfterIt) {
    REQUIRE_QEMU_IMG();
    // What a running VM's backup reads: the internal snapshot, while the active layer moves on.
    const std::string disk = sparse_qcow2("live.qcow2", 7);
    Command c = run("qemu-img snapshot -c corral-backup-test '" + disk + "'");
    ASSERT_EQ(c.status, 0) << c.output;
    const std::string then = dir.path("then.qcow2");
    c = run("qemu-img convert -O qcow2 -l snapshot.name=corral-backup-test '" + disk + "' '" + then + "'");
    ASSERT_EQ(c.status, 0) << c.output;
    {
        auto device = open_image(disk, ImageOpenOptions{.access = Access::ReadWrite});
        ASSERT_TRUE(device) << device.error().describe();
        ASSERT_TRUE((*device)->write_at(8 * k_mib, random_bytes(k_mib, 99)));
        ASSERT_TRUE((*device)->write_at(50 * k_mib, random_bytes(k_mib, 100)));
        ASSERT_TRUE((*device)->flush());
    }
    BackupResult result = backup("web", {{.name = "root", .path = disk, .snapshot = "corral-backup-test"}});
    EXPECT_EQ(result.read_bytes, 5 * k_mib) << "only what the snapshot holds is read";
    expect_restores_to(result.id, "root", then, ImageFormat::Qcow2);

    auto missing = create_backup(
        *repo, BackupRequest{.vm = "web", .disks = {{.name = "root", .path = disk, .snapshot = "gone"}}}, nullptr);
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message(), "disk 'root': '" + disk + "' has no snapshot named 'gone'");
}

TEST_F(Backups, RawDisksOfOddSizesAndSeveralDisksRestore) {
    REQUIRE_QEMU_IMG();
    const std::string raw = dir.path("data.raw");
    // 9 MiB + 512: the last chunk is short.
    make_image(raw, ImageFormat::Raw, 9 * k_mib + 512,
               {{0, random_bytes(k_mib, 5)}, {9 * k_mib - 4096, random_bytes(4608, 6)}});
    const std::string root = sparse_qcow2("root.qcow2", 2);
    BackupResult b = backup("db", {{.name = "root", .path = root}, {.name = "data", .path = raw}});
    EXPECT_EQ(b.logical_bytes, 64 * k_mib + 9 * k_mib + 512);
    expect_restores_to(b.id, "data", raw, ImageFormat::Raw);
    expect_restores_to(b.id, "data", raw, ImageFormat::Qcow2);
    expect_restores_to(b.id, "root", root, ImageFormat::Qcow2);

    auto ambiguous = restore_disk(*repo, RestoreRequest{.backup = b.id, .disk = "", .destination = dir.path("x")},
                                  nullptr);
    ASSERT_FALSE(ambiguous);
    EXPECT_NE(ambiguous.error().message().find("allowed: root, data"), std::string::npos)
        << ambiguous.error().message();
    EXPECT_FALSE(fs::exists(dir.path("x")));
}

TEST_F(Backups, IdenticalDisksOfTwoVmsTakeTheSpaceOfOne) {
    const std::string a = sparse_qcow2("a.qcow2", 3);
    ASSERT_EQ(std::system(("cp '" + a + "' '" + dir.path("b.qcow2") + "'").c_str()), 0);
    BackupResult first = backup("vm-a", {{.name = "root", .path = a}});
    BackupResult second = backup("vm-b", {{.name = "root", .path = dir.path("b.qcow2")}});
    EXPECT_EQ(first.new_chunks, 2u);
    EXPECT_EQ(second.new_chunks, 0u);
    EXPECT_EQ(chunk_files(repo_path), 2u);
}

TEST_F(Backups, RestoreRefusesAnExistingDestinationAndUnknownNames) {
    const std::string disk = sparse_qcow2("root.qcow2", 4);
    BackupResult b = backup("web", {{.name = "root", .path = disk}});
    std::ofstream(dir.path("taken")) << "precious";
    auto r = restore_disk(*repo, RestoreRequest{.backup = b.id, .disk = "root", .destination = dir.path("taken")},
                          nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::Conflict) << r.error().describe();
    std::ifstream in(dir.path("taken"));
    std::string content;
    in >> content;
    EXPECT_EQ(content, "precious");

    r = restore_disk(*repo, RestoreRequest{.backup = "nope", .disk = "root", .destination = dir.path("n")}, nullptr);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::NotFound);
    EXPECT_NE(r.error().message().find("no backup 'nope'"), std::string::npos);
    r = restore_disk(*repo, RestoreRequest{.backup = b.id, .disk = "swap", .destination = dir.path("n")}, nullptr);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("disk 'swap' is not in backup"), std::string::npos);
    EXPECT_FALSE(fs::exists(dir.path("n")));
}

TEST_F(Backups, BadRequestsNameTheFieldAndRecordNothing) {
    const std::string disk = sparse_qcow2("root.qcow2", 5);
    auto r = create_backup(*repo, BackupRequest{.vm = "../x", .disks = {{.name = "root", .path = disk}}}, nullptr);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("vm '../x' is invalid"), std::string::npos);
    r = create_backup(*repo, BackupRequest{.vm = "web", .disks = {}}, nullptr);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("disks is empty"), std::string::npos);
    r = create_backup(*repo, BackupRequest{.vm = "web", .disks = {{.name = "root", .path = dir.path("missing")}}},
                      nullptr);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("disk 'root'"), std::string::npos) << r.error().message();
    r = create_backup(*repo,
                      BackupRequest{.vm = "web", .config_json = "[1]", .disks = {{.name = "root", .path = disk}}},
                      nullptr);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("config_json"), std::string::npos);
    EXPECT_TRUE(list_backups(*repo, std::nullopt)->empty());
    EXPECT_EQ(chunk_files(repo_path), 0u);
}

TEST_F(Backups, CancelledBackupIsNotListed) {
    const std::string disk = sparse_qcow2("root.qcow2", 6);
    auto r = create_backup(*repo, BackupRequest{.vm = "web", .disks = {{.name = "root", .path = disk}}},
                           [](uint64_t done, uint64_t total) {
                               return done == total ? Proceed::Cancel : Proceed::Continue;
                           });
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().errno_value(), ECANCELED);
    EXPECT_TRUE(list_backups(*repo, std::nullopt)->empty());
    EXPECT_TRUE(repo->index_ids()->empty());
}

TEST_F(Backups, VerifyFindsAFlippedBitAndNamesBackupDiskAndOffset) {
    const std::string disk = sparse_qcow2("root.qcow2", 7);
    BackupResult first = backup("web", {{.name = "root", .path = disk}}, k_2026_12_01);
    BackupResult second = backup("web", {{.name = "root", .path = disk}}, k_2026_12_01 + 60);
    auto good = verify_backups(*repo, {}, nullptr);
    ASSERT_TRUE(good) << good.error().describe();
    EXPECT_EQ(good->backups, 2u);
    EXPECT_EQ(good->chunks, 2u);  // shared chunks are read once
    EXPECT_TRUE(good->problems.empty());
    EXPECT_EQ(list_backups(*repo, std::nullopt)->front().verify_state, "ok");

    // Flip one bit in the chunk at 40 MiB (chunk 10 of the disk).
    auto shown = show_backup(*repo, first.id);
    ASSERT_TRUE(shown);
    const std::string name = shown->second.disks[0].chunks[10];
    ASSERT_FALSE(name.empty());
    {
        std::fstream f(repo->chunk_path(name), std::ios::in | std::ios::out | std::ios::binary);
        f.seekg(100);
        char c = 0;
        f.read(&c, 1);
        c ^= 0x04;
        f.seekp(100);
        f.write(&c, 1);
    }
    auto bad = verify_backups(*repo, {}, nullptr);
    ASSERT_TRUE(bad) << bad.error().describe();
    ASSERT_EQ(bad->problems.size(), 2u);  // both backups use that chunk
    EXPECT_EQ(bad->bad_backups, (std::vector<std::string>{first.id, second.id}));
    const VerifyProblem& p = bad->problems[0];
    EXPECT_EQ(p.backup, first.id);
    EXPECT_EQ(p.disk, "root");
    EXPECT_EQ(p.offset, 40 * k_mib);
    EXPECT_EQ(p.chunk, name);
    EXPECT_NE(p.describe().find("disk 'root' offset 41943040"), std::string::npos) << p.describe();
    auto records = list_backups(*repo, std::nullopt);
    EXPECT_EQ(records->front().verify_state, "bad");
    EXPECT_NE(records->front().verify_error.find("offset 41943040"), std::string::npos);
    // A restore of a damaged backup fails and leaves no image behind.
    auto r = restore_disk(*repo, RestoreRequest{.backup = first.id, .disk = "root", .destination = dir.path("r")},
                          nullptr);
    ASSERT_FALSE(r);
    EXPECT_FALSE(fs::exists(dir.path("r")));
}

TEST_F(Backups, VerifyReportsAMissingChunk) {
    const std::string disk = sparse_qcow2("root.qcow2", 8);
    BackupResult b = backup("web", {{.name = "root", .path = disk}});
    auto shown = show_backup(*repo, b.id);
    fs::remove(repo->chunk_path(shown->second.disks[0].chunks[2]));
    auto result = verify_backups(*repo, {b.id}, nullptr);
    ASSERT_TRUE(result);
    ASSERT_EQ(result->problems.size(), 1u);
    EXPECT_EQ(result->problems[0].offset, 8 * k_mib);
}

TEST_F(Backups, PruneKeepsExactlyThePolicyAndGcFreesOnlyUnreferencedChunks) {
    // Each day of December 1-10, one backup of a disk whose second region changes daily.
    std::vector<std::string> ids;
    for (int day = 0; day < 10; ++day) {
        const std::string path = dir.path(fmt::format("day{}.raw", day));
        make_image(path, ImageFormat::Raw, 8 * k_mib, {{0, random_bytes(4 * k_mib, 100)},
                                                       {4 * k_mib, random_bytes(4 * k_mib, 200 + day)}});
        ids.push_back(backup("web", {{.name = "root", .path = path}}, k_2026_12_01 + day * k_day + 3600).id);
    }
    // Two backups on the last day: keep-daily keeps only the newer one of them.
    const std::string last = dir.path("day9.raw");
    ids.push_back(backup("web", {{.name = "root", .path = last}}, k_2026_12_01 + 9 * k_day + 7200).id);
    // Another VM is not touched by a prune limited to "web".
    const std::string other = sparse_qcow2("other.qcow2", 9);
    std::string other_id = backup("db", {{.name = "root", .path = other}}, k_2026_12_01).id;
    EXPECT_EQ(chunk_files(repo_path), 11u + 2u);

    auto bad = prune_backups(*repo, PruneOptions{.vm = "web"});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("at least one of keep_last"), std::string::npos);
    bad = prune_backups(*repo, PruneOptions{.vm = "web", .keep_daily = -1});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("keep_daily -1 is invalid"), std::string::npos);

    auto dry = prune_backups(*repo, PruneOptions{.vm = "web", .keep_daily = 3, .dry_run = true});
    ASSERT_TRUE(dry) << dry.error().describe();
    EXPECT_EQ(dry->removed.size(), 8u);
    EXPECT_EQ(list_backups(*repo, "web")->size(), 11u);

    // keep-last 1 (the second backup of Dec 10), keep-daily 3 (Dec 10 newest, Dec 9, Dec 8),
    // keep-weekly 2: ISO weeks of Dec 10 (Mon Dec 7 - ...; already kept) and Nov 30 - Dec 6: Dec 6.
    auto pruned = prune_backups(*repo, PruneOptions{.vm = "web", .keep_last = 1, .keep_daily = 3, .keep_weekly = 2});
    ASSERT_TRUE(pruned) << pruned.error().describe();
    std::vector<std::string> expected_kept = {ids[10], ids[8], ids[7], ids[5]};
    std::vector<std::string> kept;
    auto web = list_backups(*repo, "web");
    ASSERT_TRUE(web);
    for (const auto& r : *web)
        kept.push_back(r.id);
    std::sort(kept.begin(), kept.end());
    std::sort(expected_kept.begin(), expected_kept.end());
    EXPECT_EQ(kept, expected_kept);
    EXPECT_EQ(list_backups(*repo, "db")->size(), 1u);
    EXPECT_EQ(repo->index_ids()->size(), 5u);

    auto gc = collect_garbage(*repo);
    ASSERT_TRUE(gc) << gc.error().describe();
    // Kept: the shared first half, day 5, 7, 8, 9's second halves, and db's two chunks.
    EXPECT_EQ(gc->kept_chunks, 1u + 4u + 2u);
    EXPECT_EQ(gc->removed_chunks, 6u);
    EXPECT_EQ(chunk_files(repo_path), 7u);
    auto verified = verify_backups(*repo, {}, nullptr);
    ASSERT_TRUE(verified);
    EXPECT_TRUE(verified->problems.empty());
    EXPECT_EQ(verified->backups, 5u);
    EXPECT_EQ(list_backups(*repo, "db")->front().id, other_id);
}

TEST_F(Backups, BackupsOfTheSameSecondListInTheOrderMadeAndPruneKeepsTheLast) {
    // A schedule's run right after a manual one can land in the same second; the ids' random
    // suffixes must not decide which one is "the newest".
    const std::string disk = sparse_qcow2("root.qcow2", 30);
    std::vector<std::string> made;
    for (int i = 0; i < 8; ++i)
        made.push_back(backup("web", {{.name = "root", .path = disk}}, k_2026_12_01).id);
    auto listed = list_backups(*repo, "web");
    ASSERT_TRUE(listed) << listed.error().describe();
    std::vector<std::string> ids;
    for (const auto& r : *listed)
        ids.push_back(r.id);
    EXPECT_EQ(ids, made);

    auto pruned = prune_backups(*repo, PruneOptions{.vm = "web", .keep_last = 2});
    ASSERT_TRUE(pruned) << pruned.error().describe();
    EXPECT_EQ(pruned->kept, (std::vector<std::string>{made[7], made[6]}));
    listed = list_backups(*repo, "web");
    ASSERT_TRUE(listed);
    ASSERT_EQ(listed->size(), 2u);
    EXPECT_EQ(listed->back().id, made[7]);
}

TEST_F(Backups, DeleteThenGcKeepsSharedChunks) {
    const std::string disk = sparse_qcow2("root.qcow2", 10);
    BackupResult a = backup("web", {{.name = "root", .path = disk}});
    const std::string changed = sparse_qcow2("root2.qcow2", 10);
    {
        auto dev = open_image(changed, ImageOpenOptions{.access = Access::ReadWrite, .format = std::nullopt});
        ASSERT_TRUE(dev);
        ASSERT_TRUE((*dev)->write_at(40 * k_mib, random_bytes(4096, 77)));
        ASSERT_TRUE((*dev)->flush());
    }
    BackupResult b = backup("web", {{.name = "root", .path = changed}});
    EXPECT_EQ(b.new_chunks, 1u);
    ASSERT_TRUE(delete_backup(*repo, a.id));
    auto gone = delete_backup(*repo, a.id);
    ASSERT_FALSE(gone);
    EXPECT_EQ(gone.error().kind(), ErrorKind::NotFound);
    auto gc = collect_garbage(*repo);
    ASSERT_TRUE(gc);
    EXPECT_EQ(gc->removed_chunks, 1u);
    EXPECT_EQ(gc->kept_chunks, 2u);
    EXPECT_TRUE(verify_backups(*repo, {}, nullptr)->problems.empty());
}

TEST_F(Backups, GcWaitsForNobodyAndRefusesWhileABackupHoldsTheRepository) {
    auto other = Repository::open(repo_path, std::nullopt);
    ASSERT_TRUE(other);
    auto held = other->lock(LockMode::Shared);
    ASSERT_TRUE(held);
    auto gc = collect_garbage(*repo);
    ASSERT_FALSE(gc);
    EXPECT_EQ(gc.error().kind(), ErrorKind::Busy);
    EXPECT_NE(gc.error().message().find("a backup, verify or restore is running"), std::string::npos);
}

/// Runs a backup in a child process that SIGKILLs itself (or is killed) part-way; returns after
/// the child is dead, asserting it really died of the signal.
void backup_in_child_and_kill(const std::string& repo_path, const std::string& disk, bool at_end) {
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        auto repo = Repository::open(repo_path, std::nullopt);
        if (!repo)
            ::_exit(2);
        // The final progress report comes after the index is durable and before the catalogue
        // says "complete": the narrowest window there is.
        auto r = create_backup(*repo, BackupRequest{.vm = "web", .disks = {{.name = "root", .path = disk}}},
                               [at_end](uint64_t done, uint64_t total) {
                                   if (at_end && done == total)
                                       ::raise(SIGKILL);
                                   return Proceed::Continue;
                               });
        ::_exit(r ? 0 : 3);
    }
    if (!at_end) {
        // Kill it among its chunk writes: as soon as a few chunk files exist.
        while (chunk_files(repo_path) < 4) {
            int status = 0;
            if (::waitpid(child, &status, WNOHANG) == child)
                FAIL() << "the backup finished before it could be killed (status " << status << ")";
            ::usleep(200);
        }
        ::kill(child, SIGKILL);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "status " << status;
}

class KilledBackups : public Backups {
protected:
    KilledBackups() { options.chunk_size = 64u << 10; }
};

TEST_F(KilledBackups, AKilledBackupLeavesTheRepositoryConsistentAndTheNextOneWorks) {
    REQUIRE_QEMU_IMG();
    const std::string disk = dir.path("big.raw");
    make_image(disk, ImageFormat::Raw, 48 * k_mib, {{0, random_bytes(48 * k_mib, 11)}});
    for (bool at_end : {false, true}) {
        SCOPED_TRACE(at_end ? "killed after its index" : "killed among its chunks");
        backup_in_child_and_kill(repo_path, disk, at_end);
        if (HasFatalFailure())
            return;
        reopen();
        EXPECT_TRUE(list_backups(*repo, std::nullopt)->empty());
        EXPECT_GT(chunk_files(repo_path), 0u);
        auto gc = collect_garbage(*repo);
        ASSERT_TRUE(gc) << gc.error().describe();
        EXPECT_EQ(gc->removed_incomplete, 1u);
        EXPECT_EQ(gc->kept_chunks, 0u);
        EXPECT_EQ(chunk_files(repo_path), 0u);
        // Nothing at all is left: no temporary file of a chunk or index the child was writing.
        EXPECT_TRUE(file_listing(repo_path + "/chunks").empty());
        EXPECT_TRUE(file_listing(repo_path + "/indexes").empty());
        EXPECT_TRUE(repo->index_ids()->empty());
    }
    BackupResult b = backup("web", {{.name = "root", .path = disk}});
    EXPECT_EQ(b.new_chunks, 48u * 16u);
    EXPECT_TRUE(verify_backups(*repo, {}, nullptr)->problems.empty());
    expect_restores_to(b.id, "root", disk, ImageFormat::Qcow2);
}

TEST_F(KilledBackups, AWriteFailureFailsTheBackupListsNothingAndLeavesNoFile) {
    // A file size limit stands in for a full disk: the first chunk that does not compress below
    // it fails with EFBIG, after eight small chunks were written (and not yet committed).
    const std::string disk = dir.path("disk.raw");
    std::map<uint64_t, std::vector<uint8_t>> writes;
    for (uint64_t i = 0; i < 8; ++i)
        writes[i * 65536] = std::vector<uint8_t>(65536, static_cast<uint8_t>(i + 1));
    writes[8 * 65536] = random_bytes(65536, 12);
    make_image(disk, ImageFormat::Raw, 9 * 65536, writes);
    const std::string message_file = dir.path("message");
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        int code = 0;
        {
            ::signal(SIGXFSZ, SIG_IGN);  // a write past the limit then fails with EFBIG
            struct rlimit limit = {32 << 10, 32 << 10};
            ::setrlimit(RLIMIT_FSIZE, &limit);
            auto repo = Repository::open(repo_path, std::nullopt);
            if (!repo)
                ::_exit(2);
            auto r = create_backup(*repo, BackupRequest{.vm = "web", .disks = {{.name = "root", .path = disk}}},
                                   nullptr);
            code = r ? 0 : 1;
            if (!r)
                std::ofstream(message_file) << r.error().describe();
        }  // the Repository goes here, with its uncommitted chunks
        ::_exit(code);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status)) << "status " << status;
    EXPECT_EQ(WEXITSTATUS(status), 1);
    std::ifstream in(message_file);
    std::string message((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(message.find("File too large"), std::string::npos) << message;
    reopen();
    EXPECT_TRUE(list_backups(*repo, std::nullopt)->empty());
    EXPECT_TRUE(repo->catalogue().incomplete()->empty());
    EXPECT_TRUE(file_listing(repo_path + "/chunks").empty());
    EXPECT_TRUE(file_listing(repo_path + "/indexes").empty());
    // The next backup, without the limit, works.
    BackupResult b = backup("web", {{.name = "root", .path = disk}});
    EXPECT_EQ(b.new_chunks, 9u);
}

class EncryptedBackups : public Backups {
protected:
    void SetUp() override {
        ASSERT_TRUE(create_key_file(dir.path("key")));
        options.key_file = dir.path("key");
        Backups::SetUp();
    }
};

TEST_F(EncryptedBackups, RoundTripAndNothingReadableWithoutTheKey) {
    REQUIRE_QEMU_IMG();
    const std::string disk = dir.path("text.raw");
    std::vector<uint8_t> secret(k_mib);
    const std::string phrase = "the password is swordfish; ";
    for (size_t i = 0; i < secret.size(); ++i)
        secret[i] = static_cast<uint8_t>(phrase[i % phrase.size()]);
    make_image(disk, ImageFormat::Raw, 4 * k_mib, {{0, secret}});
    BackupResult b = backup("vault", {{.name = "root", .path = disk}});
    EXPECT_EQ(b.new_chunks, 1u);
    Command grep = run("grep -rl swordfish '" + repo_path + "'");
    EXPECT_NE(grep.status, 0) << "plaintext found in the repository: " << grep.output;
    grep = run("grep -rl memory '" + repo_path + "/indexes'");
    EXPECT_NE(grep.status, 0) << "the VM configuration is readable: " << grep.output;
    expect_restores_to(b.id, "root", disk, ImageFormat::Raw);

    ASSERT_TRUE(create_key_file(dir.path("wrong")));
    const auto before = file_listing(repo_path);
    auto wrong = Repository::open(repo_path, dir.path("wrong"));
    ASSERT_FALSE(wrong);
    EXPECT_EQ(file_listing(repo_path), before);
}

namespace {

/// A 64 KiB-granular map of a 64 MiB disk with the granules at `offsets` dirty.
DirtyMap dirty_at(const std::vector<uint64_t>& offsets) {
    DirtyMap map{.granularity = 64 * 1024, .disk_size = 64 * k_mib, .bits = std::vector<uint8_t>(128, 0)};
    for (uint64_t offset : offsets)
        map.bits[offset / map.granularity / 8] |= uint8_t(1u << (offset / map.granularity % 8));
    return map;
}

void write_at(const std::string& path, uint64_t offset, const std::vector<uint8_t>& data) {
    auto device = open_image(path, ImageOpenOptions{.access = Access::ReadWrite});
    ASSERT_TRUE(device) << device.error().describe();
    ASSERT_TRUE((*device)->write_at(offset, data));
    ASSERT_TRUE((*device)->flush());
}

}  // namespace

TEST_F(Backups, AnIncrementalReadsOnlyTheDirtyGranulesAndEqualsAFullBackup) {
    REQUIRE_QEMU_IMG();
    const std::string disk = sparse_qcow2("root.qcow2", 11);
    BackupResult first = backup("web", {{.name = "root", .path = disk}}, k_2026_12_01);
    EXPECT_EQ(first.read_mode, "full");
    EXPECT_EQ(first.full_reason, "disk root: no bitmap");
    // Inside the data at 8 MiB (chunk 2), and where the disk was empty (chunk 5).
    write_at(disk, 9 * k_mib, random_bytes(64 * 1024, 12));
    write_at(disk, 20 * k_mib, random_bytes(64 * 1024, 13));
    auto base = show_backup(*repo, first.id);
    ASSERT_TRUE(base);
    DiskSource source{.name = "root", .path = disk};
    source.incremental = DiskSource::Incremental{
        .base = first.id, .base_chunks = base->second.disks[0].chunks, .dirty = dirty_at({9 * k_mib, 20 * k_mib})};

    BackupResult second = backup("web", {source}, k_2026_12_01 + 60);
    EXPECT_EQ(second.read_mode, "incremental");
    EXPECT_EQ(second.base, first.id);
    EXPECT_EQ(second.full_reason, "");
    EXPECT_EQ(second.read_bytes, 128 * 1024u) << "the two dirty granules, nothing else";
    EXPECT_EQ(second.reused_chunks, 1u) << "the chunk at 40 MiB, taken unread";
    EXPECT_EQ(second.new_chunks, 2u);
    auto record = repo->catalogue().find(second.id);
    ASSERT_TRUE(record && *record);
    EXPECT_EQ((*record)->read_mode, "incremental");
    EXPECT_EQ((*record)->read_bytes, 128 * 1024u);
    EXPECT_EQ((*record)->base, first.id);
    expect_restores_to(second.id, "root", disk, ImageFormat::Qcow2);

    BackupResult full = backup("web", {{.name = "root", .path = disk}}, k_2026_12_01 + 120);
    EXPECT_EQ(show_backup(*repo, full.id)->second.disks[0].chunks,
              show_backup(*repo, second.id)->second.disks[0].chunks)
        << "an incremental lists the chunks a full read would";
}

TEST_F(Backups, AnIncrementalReadsAChunkWholeWhenItsBaseChunkIsDamaged) {
    REQUIRE_QEMU_IMG();
    const std::string disk = sparse_qcow2("root.qcow2", 21);
    BackupResult first = backup("web", {{.name = "root", .path = disk}}, k_2026_12_01);
    auto base = show_backup(*repo, first.id);
    ASSERT_TRUE(base);
    {
        std::fstream f(repo->chunk_path(base->second.disks[0].chunks[2]),
                       std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(100);
        f.put('\x5a');
    }
    write_at(disk, 9 * k_mib, random_bytes(64 * 1024, 22));
    DiskSource source{.name = "root", .path = disk};
    source.incremental = DiskSource::Incremental{
        .base = first.id, .base_chunks = base->second.disks[0].chunks, .dirty = dirty_at({9 * k_mib})};
    BackupResult second = backup("web", {source}, k_2026_12_01 + 60);
    EXPECT_EQ(second.read_mode, "incremental");
    EXPECT_EQ(second.read_bytes, 4 * k_mib) << "the chunk's 4 MiB of data, from the disk";
    expect_restores_to(second.id, "root", disk, ImageFormat::Qcow2);
}

TEST_F(Backups, AnIncrementalWhoseBaseWasDeletedMeanwhileReadsInFullSayingWhy) {
    const std::string disk = sparse_qcow2("root.qcow2", 31);
    BackupResult first = backup("web", {{.name = "root", .path = disk}}, k_2026_12_01);
    auto base = show_backup(*repo, first.id);
    ASSERT_TRUE(base);
    DiskSource source{.name = "root", .path = disk};
    source.incremental =
        DiskSource::Incremental{.base = first.id, .base_chunks = base->second.disks[0].chunks, .dirty = dirty_at({})};
    ASSERT_TRUE(delete_backup(*repo, first.id));
    BackupResult second = backup("web", {source}, k_2026_12_01 + 60);
    EXPECT_EQ(second.read_mode, "full");
    EXPECT_EQ(second.full_reason, "disk root: previous backup " + first.id + " was deleted as this one started");
    EXPECT_EQ(second.read_bytes, 5 * k_mib);
}

}  // namespace
}  // namespace corral::storage::backup
