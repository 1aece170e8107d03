#include "storage/backup/blob_codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "backup_test_util.h"

namespace corral::storage::backup {
namespace {

using testing::random_bytes;

BackupKey key_from(uint8_t fill) {
    BackupKey key;
    key.encryption.fill(fill);
    key.naming.fill(static_cast<uint8_t>(fill + 1));
    key.check.fill(static_cast<uint8_t>(fill + 2));
    return key;
}

TEST(BlobCodec, CompressesWhatCompressesAndStoresRandomDataAsItIs) {
    BlobCodec codec(nullptr, 1);
    std::vector<uint8_t> text(1 << 20, 'a');
    auto blob = codec.encode(text, "chunk:x");
    ASSERT_TRUE(blob);
    EXPECT_LT(blob->size(), text.size() / 100);
    auto back = codec.decode(*blob, "chunk:x", 1 << 20);
    ASSERT_TRUE(back) << back.error().describe();
    EXPECT_EQ(*back, text);

    auto noise = random_bytes(1 << 20, 1);
    blob = codec.encode(noise, "chunk:y");
    ASSERT_TRUE(blob);
    EXPECT_EQ(blob->size(), noise.size() + 12);  // header only
    back = codec.decode(*blob, "chunk:y", 1 << 20);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, noise);
}

TEST(BlobCodec, EncryptedBlobsOpenOnlyWithTheirKeyAndName) {
    const BackupKey key = key_from(7), other = key_from(9);
    BlobCodec codec(&key, 1);
    std::vector<uint8_t> text(4096, 'z');
    auto blob = codec.encode(text, "chunk:a");
    ASSERT_TRUE(blob);
    // The content is not visible in the file.
    EXPECT_EQ(std::search(blob->begin(), blob->end(), text.begin(), text.begin() + 64), blob->end());
    auto back = codec.decode(*blob, "chunk:a", 1 << 20);
    ASSERT_TRUE(back) << back.error().describe();
    EXPECT_EQ(*back, text);

    auto renamed = codec.decode(*blob, "chunk:b", 1 << 20);
    ASSERT_FALSE(renamed);
    EXPECT_NE(renamed.error().message().find("authentication failed"), std::string::npos);

    BlobCodec wrong(&other, 1);
    EXPECT_FALSE(wrong.decode(*blob, "chunk:a", 1 << 20));

    auto flipped = *blob;
    flipped[flipped.size() / 2] ^= 0x10;
    EXPECT_FALSE(codec.decode(flipped, "chunk:a", 1 << 20));

    BlobCodec plain(nullptr, 1);
    auto unkeyed = plain.decode(*blob, "chunk:a", 1 << 20);
    ASSERT_FALSE(unkeyed);
    EXPECT_NE(unkeyed.error().message().find("no key"), std::string::npos);
    // A plain blob planted in an encrypted repository is refused, not trusted.
    auto planted = plain.encode(text, "chunk:a");
    ASSERT_TRUE(planted);
    EXPECT_FALSE(codec.decode(*planted, "chunk:a", 1 << 20));
}

TEST(BlobCodec, MalformedBlobsFailWithAReason) {
    BlobCodec codec(nullptr, 1);
    EXPECT_FALSE(codec.decode(std::vector<uint8_t>{}, "x", 100));
    std::vector<uint8_t> junk(64, 0xab);
    auto r = codec.decode(junk, "x", 100);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("bad magic"), std::string::npos);

    std::vector<uint8_t> text(1000, 'q');
    auto blob = codec.encode(text, "x");
    ASSERT_TRUE(blob);
    // A length above the allowed maximum is refused before anything is allocated.
    r = codec.decode(*blob, "x", 999);
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message().find("at most 999"), std::string::npos);
    auto truncated = *blob;
    truncated.resize(truncated.size() - 3);
    EXPECT_FALSE(codec.decode(truncated, "x", 1000));
}

}  // namespace
}  // namespace corral::storage::backup
