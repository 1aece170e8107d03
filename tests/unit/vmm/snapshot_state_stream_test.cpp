#include "vmm/snapshot/state_stream.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <vector>

#include "vmm/snapshot/crc32c.h"

namespace corral::vmm::snapshot {
namespace {

constexpr uint32_t k_outer = tag("OUTR");
constexpr uint32_t k_inner = tag("INNR");

struct Sample {
    uint8_t a = 0;
    uint16_t b = 0;
    uint32_t c = 0;
    uint64_t d = 0;
    bool e = false;
    std::vector<uint8_t> blob;
    std::array<uint8_t, 3> fixed{};
};

std::vector<uint8_t> encode(const Sample& s) {
    StateWriter w;
    w.section(k_outer, 2, [&](StateWriter& o) {
        o.u8(s.a);
        o.u16(s.b);
        o.section(k_inner, 1, [&](StateWriter& i) {
            i.u32(s.c);
            i.u64(s.d);
            i.boolean(s.e);
        });
        o.bytes(s.blob);
        o.fixed_bytes(s.fixed);
    });
    return w.take();
}

Result<Sample> decode(std::span<const uint8_t> data) {
    return decode_all<Sample>(data, "sample", [](StateReader& r) {
        Sample s;
        r.section(k_outer, 2, [&](StateReader& o, uint16_t) {
            s.a = o.u8();
            s.b = o.u16();
            o.section(k_inner, 1, [&](StateReader& i, uint16_t) {
                s.c = i.u32();
                s.d = i.u64();
                s.e = i.boolean();
            });
            s.blob = o.bytes(16);
            o.fixed_bytes(s.fixed);
        });
        return s;
    });
}

Sample sample() {
    return {0x12, 0x3456, 0x789ABCDE, 0x0123456789ABCDEFull, true, {1, 2, 3, 4}, {7, 8, 9}};
}

TEST(Crc32cTest, KnownVector) {
    // RFC 3720 §B.4: CRC-32C of "123456789" is 0xE3069283.
    std::string text = "123456789";
    EXPECT_EQ(crc32c({reinterpret_cast<const uint8_t*>(text.data()), text.size()}), 0xE3069283u);
    std::array<uint8_t, 32> zeros{};
    EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
    EXPECT_EQ(crc32c_portable({reinterpret_cast<const uint8_t*>(text.data()), text.size()}), 0xE3069283u);
}

TEST(Crc32cTest, TheInstructionPathAgreesWithTheTableAtEveryLengthAndAlignment) {
    // crc32c() takes the CPU's instruction 8 bytes at a time, then the tail byte by byte; any
    // start offset and length, and a CRC continued across two calls, must give the table's answer.
    std::vector<uint8_t> bytes(4096 + 64);
    uint32_t seed = 12345;
    for (auto& byte : bytes) {
        seed = seed * 1103515245u + 12345u;
        byte = static_cast<uint8_t>(seed >> 16);
    }
    for (size_t start = 0; start < 9; ++start)
        for (size_t length : {0u, 1u, 7u, 8u, 9u, 15u, 63u, 4096u}) {
            std::span<const uint8_t> part(bytes.data() + start, length);
            EXPECT_EQ(crc32c(part), crc32c_portable(part)) << "start " << start << ", length " << length;
            auto half = length / 2;
            EXPECT_EQ(crc32c(part.subspan(half), crc32c(part.first(half))), crc32c_portable(part))
                << "continued, start " << start << ", length " << length;
        }
}

TEST(StateStreamTest, RoundTripsEveryType) {
    auto bytes = encode(sample());
    auto decoded = decode(bytes);
    ASSERT_TRUE(decoded) << decoded.error().message();
    EXPECT_EQ(decoded->a, 0x12);
    EXPECT_EQ(decoded->b, 0x3456);
    EXPECT_EQ(decoded->c, 0x789ABCDEu);
    EXPECT_EQ(decoded->d, 0x0123456789ABCDEFull);
    EXPECT_TRUE(decoded->e);
    EXPECT_EQ(decoded->blob, (std::vector<uint8_t>{1, 2, 3, 4}));
    EXPECT_EQ(decoded->fixed, (std::array<uint8_t, 3>{7, 8, 9}));
    EXPECT_EQ(encode(*decoded), bytes);
}

TEST(StateStreamTest, IsLittleEndianWithTaggedHeader) {
    StateWriter w;
    w.section(tag("ABCD"), 3, [](StateWriter& s) { s.u16(0x0102); });
    auto& d = w.data();
    ASSERT_EQ(d.size(), k_section_header_size + 2);
    EXPECT_EQ(std::string(d.begin(), d.begin() + 4), "ABCD");
    EXPECT_EQ(d[4], 3);
    EXPECT_EQ(d[8], 2);  // payload length
    EXPECT_EQ(d[16], 0x02);
    EXPECT_EQ(d[17], 0x01);
}

TEST(StateStreamTest, EveryTruncationIsAnErrorNeverACrash) {
    auto bytes = encode(sample());
    for (size_t size = 0; size < bytes.size(); ++size) {
        auto decoded = decode(std::span(bytes).first(size));
        ASSERT_FALSE(decoded) << "truncated to " << size << " bytes was accepted";
        EXPECT_NE(decoded.error().message().find("sample"), std::string::npos);
    }
}

TEST(StateStreamTest, EveryFlippedBitIsDetected) {
    auto bytes = encode(sample());
    for (size_t i = 0; i < bytes.size(); ++i) {
        for (int bit = 0; bit < 8; ++bit) {
            auto corrupted = bytes;
            corrupted[i] ^= static_cast<uint8_t>(1 << bit);
            auto decoded = decode(corrupted);
            EXPECT_FALSE(decoded) << "bit " << bit << " of byte " << i << " flipped was accepted";
        }
    }
}

TEST(StateStreamTest, ChecksumFailureIsNamed) {
    auto bytes = encode(sample());
    bytes.back() ^= 0xFF;  // inside the outer payload
    auto decoded = decode(bytes);
    ASSERT_FALSE(decoded);
    EXPECT_NE(decoded.error().message().find("'OUTR' fails its checksum"), std::string::npos)
        << decoded.error().message();
}

TEST(StateStreamTest, TrailingBytesAreRefused) {
    auto bytes = encode(sample());
    bytes.push_back(0);
    auto decoded = decode(bytes);
    ASSERT_FALSE(decoded);
    EXPECT_NE(decoded.error().message().find("unexpected bytes"), std::string::npos);
}

TEST(StateStreamTest, NewerVersionIsRefused) {
    StateWriter w;
    w.section(k_outer, 3, [](StateWriter&) {});
    StateReader r(w.data(), "sample");
    bool called = false;
    r.section(k_outer, 2, [&](StateReader&, uint16_t) { called = true; });
    EXPECT_FALSE(called);
    auto result = r.finish();
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("version 3; this build reads versions 1-2"),
              std::string::npos)
        << result.error().message();
}

TEST(StateStreamTest, WrongTagIsRefused) {
    StateWriter w;
    w.section(k_inner, 1, [](StateWriter&) {});
    StateReader r(w.data());
    r.section(k_outer, 1, [](StateReader&, uint16_t) { FAIL(); });
    auto result = r.finish();
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("'OUTR' expected at offset 0, found 'INNR'"),
              std::string::npos);
}

TEST(StateStreamTest, HostileLengthsDoNotAllocate) {
    // A byte string claiming 4 GiB, and a section claiming more than there is.
    StateWriter w;
    w.u32(0xFFFFFFFF);
    StateReader r(w.data());
    EXPECT_TRUE(r.bytes(1 << 20).empty());
    EXPECT_FALSE(r.finish());

    StateWriter s;
    s.u32(k_outer);
    s.u16(1);
    s.u16(0);
    s.u32(0x7FFFFFFF);
    s.u32(0);
    StateReader rs(s.data());
    rs.section(k_outer, 1, [](StateReader&, uint16_t) { FAIL(); });
    auto result = rs.finish();
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("truncated"), std::string::npos);
}

TEST(StateStreamTest, PayloadNotConsumedIsAnError) {
    StateWriter w;
    w.section(k_outer, 1, [](StateWriter& s) { s.u32(5); });
    StateReader r(w.data());
    r.section(k_outer, 1, [](StateReader& s, uint16_t) { s.u16(); });
    EXPECT_FALSE(r.finish());
}

TEST(StateStreamTest, ReadsAfterAnErrorReturnZeroAndKeepTheFirstError) {
    std::array<uint8_t, 1> one{0xAA};
    StateReader r(one, "x");
    EXPECT_EQ(r.u32(), 0u);
    EXPECT_EQ(r.u8(), 0u);  // the byte is still there, but the reader has failed
    r.fail("later");
    auto result = r.finish();
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("truncated"), std::string::npos);
}

TEST(StateStreamTest, BooleanMustBeZeroOrOne) {
    std::array<uint8_t, 1> two{2};
    StateReader r(two);
    r.boolean();
    EXPECT_FALSE(r.finish());
}

}  // namespace
}  // namespace corral::vmm::snapshot
