#include "storage/qcow2/format.h"

#include <gtest/gtest.h>

#include "storage/endian.h"
#include "storage/image.h"

namespace corral::storage::qcow2 {
namespace {

Header sample_header() {
    Header h;
    h.cluster_bits = 16;
    h.size = 1ull << 30;
    h.l1_size = 2;
    h.l1_table_offset = 3 << 16;
    h.refcount_table_offset = 1 << 16;
    h.refcount_table_clusters = 1;
    h.backing_file = "base.qcow2";
    h.backing_format = "qcow2";
    h.feature_names = {{0, 0, "dirty bit"}, {1, 0, "lazy refcounts"}};
    h.other_extensions = {{0x12345678, {1, 2, 3, 4, 5}}};
    return h;
}

Result<Header> parse(const std::vector<uint8_t>& bytes) { return parse_header(bytes, 1 << 20); }

TEST(Qcow2Header, RoundTripKeepsExtensionsAndBackingFile) {
    auto bytes = serialize_header(sample_header());
    ASSERT_TRUE(bytes);
    auto h = parse(*bytes);
    ASSERT_TRUE(h) << h.error().message();
    EXPECT_EQ(h->version, 3u);
    EXPECT_EQ(h->size, 1ull << 30);
    EXPECT_EQ(h->backing_file, "base.qcow2");
    EXPECT_EQ(h->backing_format, "qcow2");
    ASSERT_EQ(h->feature_names.size(), 2u);
    EXPECT_EQ(h->feature_names[1].name, "lazy refcounts");
    ASSERT_EQ(h->other_extensions.size(), 1u);
    EXPECT_EQ(h->other_extensions[0].type, 0x12345678u);
    EXPECT_EQ(h->other_extensions[0].data, (std::vector<uint8_t>{1, 2, 3, 4, 5}));
    // Serializing the parsed header again gives the same bytes: unknown extensions are preserved.
    auto again = serialize_header(*h);
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *bytes);
}

TEST(Qcow2Header, Version2HasNoFeatureFields) {
    Header h = sample_header();
    h.version = 2;
    h.feature_names.clear();
    auto bytes = serialize_header(h);
    ASSERT_TRUE(bytes);
    auto parsed = parse(*bytes);
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(parsed->version, 2u);
    EXPECT_EQ(parsed->refcount_order, 4u);
    EXPECT_EQ(parsed->backing_file, "base.qcow2");
}

struct Mutation {
    const char* name;
    size_t offset;
    int width;
    uint64_t value;
    const char* expected;
};

class Qcow2BadHeader : public ::testing::TestWithParam<Mutation> {};

TEST_P(Qcow2BadHeader, IsRefusedWithAMessageNamingTheProblem) {
    auto bytes = *serialize_header(sample_header());
    const Mutation& m = GetParam();
    if (m.width == 4) store_be32(&bytes[m.offset], uint32_t(m.value));
    else store_be64(&bytes[m.offset], m.value);
    auto h = parse(bytes);
    ASSERT_FALSE(h);
    EXPECT_NE(h.error().message().find(m.expected), std::string::npos) << h.error().message();
}

INSTANTIATE_TEST_SUITE_P(
    Fields, Qcow2BadHeader,
    ::testing::Values(Mutation{"magic", 0, 4, 0x12345678, "bad magic"},
                      Mutation{"version", 4, 4, 4, "unsupported qcow2 version 4"},
                      Mutation{"cluster_bits", 20, 4, 30, "cluster_bits 30 is out of range"},
                      Mutation{"size", 24, 8, 1ull << 62, "virtual size"},
                      Mutation{"crypt", 32, 4, 1, "encrypted images"},
                      Mutation{"l1_size", 36, 4, 1, "l1_size 1 is too small"},
                      Mutation{"l1_huge", 36, 4, 0x10000000, "exceeds the limit"},
                      Mutation{"l1_outside", 40, 8, 1ull << 40, "L1 table (16 bytes at offset 0x10000000000) lies outside"},
                      Mutation{"l1_unaligned", 40, 8, 0x30001, "is not aligned"},
                      Mutation{"refcount_overlap", 48, 8, 0x30000, "overlaps the L1 table"},
                      Mutation{"refcount_clusters", 56, 4, 1000, "exceeds the limit"},
                      Mutation{"snapshots", 60, 4, 100000, "nb_snapshots 100000 exceeds"},
                      Mutation{"incompatible", 72, 8, 1ull << 40, "unsupported incompatible features: bit 40"},
                      Mutation{"refcount_order", 96, 4, 7, "refcount_order 7 is out of range"},
                      Mutation{"header_length", 100, 4, 101, "header_length 101 is invalid"},
                      Mutation{"backing_name_length", 16, 4, 5000, "backing file name length 5000"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Qcow2Header, TruncatedFileIsRefused) {
    auto bytes = *serialize_header(sample_header());
    bytes.resize(50);
    auto h = parse(bytes);
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().message(), "file is too small to be a qcow2 image (50 bytes, the header needs 72)");
}

TEST(Qcow2Header, ExtensionPastTheClusterIsRefused) {
    auto bytes = *serialize_header(sample_header());
    // The first extension (backing format) claims a length beyond the cluster.
    store_be32(&bytes[112 + 4], 70000);
    auto h = parse(bytes);
    ASSERT_FALSE(h);
    EXPECT_NE(h.error().message().find("past the first cluster"), std::string::npos) << h.error().message();
}

TEST(Qcow2Header, UnknownIncompatibleFeatureUsesFeatureTableName) {
    Header h = sample_header();
    h.feature_names.push_back({0, 9, "time travel"});
    auto bytes = *serialize_header(h);
    store_be64(&bytes[72], 1ull << 9);
    auto parsed = parse(bytes);
    ASSERT_FALSE(parsed);
    EXPECT_EQ(parsed.error().message(), "image uses unsupported incompatible features: time travel");
}

TEST(Qcow2SnapshotTable, RoundTrip) {
    std::vector<Snapshot> in(2);
    in[0].l1_table_offset = 0x50000;
    in[0].l1_size = 3;
    in[0].id = "1";
    in[0].name = "first";
    in[0].disk_size = 1 << 20;
    in[0].date_sec = 1234;
    in[1].l1_table_offset = 0x60000;
    in[1].l1_size = 1;
    in[1].id = "2";
    in[1].name = "second one";
    in[1].icount = 77;
    in[1].unknown_extra = {9, 9, 9, 9, 9, 9, 9, 9};
    auto bytes = serialize_snapshot_table(in);
    size_t consumed = 0;
    auto out = parse_snapshot_table(bytes, 2, &consumed);
    ASSERT_TRUE(out) << out.error().message();
    EXPECT_EQ(consumed, bytes.size());
    ASSERT_EQ(out->size(), 2u);
    EXPECT_EQ((*out)[0].name, "first");
    EXPECT_EQ((*out)[0].disk_size, 1u << 20);
    EXPECT_EQ((*out)[0].date_sec, 1234u);
    EXPECT_EQ((*out)[1].name, "second one");
    EXPECT_EQ((*out)[1].icount, 77u);
    EXPECT_EQ((*out)[1].unknown_extra, in[1].unknown_extra);
    EXPECT_EQ(serialize_snapshot_table(*out), bytes);
}

TEST(Qcow2SnapshotTable, TruncatedAndOversizedEntriesAreRefused) {
    std::vector<Snapshot> in(1);
    in[0].id = "1";
    in[0].name = "x";
    auto bytes = serialize_snapshot_table(in);
    auto r = parse_snapshot_table(std::span(bytes).subspan(0, 30), 1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "snapshot table is truncated at entry 0 (offset 0)");
    r = parse_snapshot_table(bytes, 2);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("truncated at entry 1"), std::string::npos);
    store_be32(&bytes[36], 5000);
    r = parse_snapshot_table(bytes, 1);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "snapshot 0 has 5000 bytes of extra data (limit 1024)");
}

TEST(Qcow2Compressed, DescriptorRoundTrip) {
    for (uint32_t bits : {9u, 12u, 16u, 21u}) {
        uint64_t offset = 0x123456 + 17, length = 777;
        auto d = decode_compressed(encode_compressed(offset, length, bits), bits);
        EXPECT_EQ(d.host_offset, offset);
        EXPECT_GE(d.length, length);
        EXPECT_LT(d.length, length + 512);
    }
}

TEST(Qcow2Layout, L1EntriesForSize) {
    EXPECT_EQ(l1_entries_for(0, 16, false), 0u);
    EXPECT_EQ(l1_entries_for(1, 16, false), 1u);
    EXPECT_EQ(l1_entries_for(512ull << 20, 16, false), 1u);
    EXPECT_EQ(l1_entries_for((512ull << 20) + 1, 16, false), 2u);
    EXPECT_EQ(l1_entries_for(256ull << 20, 16, true), 1u);
}

TEST(ImageFormats, ParseFormat) {
    EXPECT_EQ(parse_format("vmdk").error().message(), "unknown image format 'vmdk' (allowed: raw, qcow2)");
}

}  // namespace
}  // namespace corral::storage::qcow2
