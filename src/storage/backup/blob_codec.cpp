#include "storage/backup/blob_codec.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zstd.h>

#include <fmt/format.h>

#include <cstring>

namespace corral::storage::backup {

namespace {

constexpr uint8_t k_magic[4] = {'C', 'R', 'B', 'K'};
constexpr uint8_t k_version = 1;
constexpr uint8_t k_flag_zstd = 1;
constexpr uint8_t k_flag_aes_gcm = 2;
constexpr size_t k_header = 12;
constexpr size_t k_nonce = 12;
constexpr size_t k_tag = 16;

struct CipherCtxFree {
    void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

Result<void> aad(EVP_CIPHER_CTX* ctx, bool encrypt, std::span<const uint8_t> header,
                 std::string_view binding) {
    int n = 0;
    auto update = encrypt ? EVP_EncryptUpdate : EVP_DecryptUpdate;
    if (update(ctx, nullptr, &n, header.data(), static_cast<int>(header.size())) != 1 ||
        update(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(binding.data()),
               static_cast<int>(binding.size())) != 1)
        return fail("AES-GCM: setting the additional data failed");
    return {};
}

}  // namespace

struct BlobCodec::Contexts {
    ZSTD_CCtx* compress = ZSTD_createCCtx();
    ZSTD_DCtx* decompress = ZSTD_createDCtx();
    ~Contexts() {
        ZSTD_freeCCtx(compress);
        ZSTD_freeDCtx(decompress);
    }
};

BlobCodec::BlobCodec(const BackupKey* key, int zstd_level)
    : m_key(key), m_level(zstd_level), m_contexts(std::make_unique<Contexts>()) {}
BlobCodec::~BlobCodec() = default;
BlobCodec::BlobCodec(BlobCodec&&) noexcept = default;
BlobCodec& BlobCodec::operator=(BlobCodec&&) noexcept = default;

Result<std::vector<uint8_t>> BlobCodec::encode(std::span<const uint8_t> plain,
                                               std::string_view binding) {
    if (plain.size() > UINT32_MAX)
        return fail("a blob is limited to 4 GiB", EINVAL);
    const size_t extra = m_key ? k_nonce + k_tag : 0;
    std::vector<uint8_t> out(k_header + extra + ZSTD_compressBound(plain.size()));
    uint8_t* payload = out.data() + k_header + (m_key ? k_nonce : 0);
    uint8_t flags = 0;
    size_t payload_size = ZSTD_compressCCtx(m_contexts->compress, payload,
                                            ZSTD_compressBound(plain.size()), plain.data(),
                                            plain.size(), m_level);
    if (ZSTD_isError(payload_size))
        return fail(fmt::format("zstd: {}", ZSTD_getErrorName(payload_size)));
    if (payload_size < plain.size()) {
        flags |= k_flag_zstd;
    } else {
        // Incompressible (already compressed or random data): stored as it is.
        std::memcpy(payload, plain.data(), plain.size());
        payload_size = plain.size();
    }
    if (m_key)
        flags |= k_flag_aes_gcm;
    std::memcpy(out.data(), k_magic, 4);
    out[4] = k_version;
    out[5] = flags;
    out[6] = out[7] = 0;
    const auto length = static_cast<uint32_t>(plain.size());
    for (int i = 0; i < 4; ++i)
        out[8 + i] = static_cast<uint8_t>(length >> (8 * i));
    if (m_key) {
        uint8_t* nonce = out.data() + k_header;
        if (RAND_bytes(nonce, k_nonce) != 1)
            return fail("no random bytes from OpenSSL for a nonce");
        CipherCtx ctx(EVP_CIPHER_CTX_new());
        int n = 0;
        if (!ctx ||
            EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, m_key->encryption.data(),
                               nonce) != 1)
            return fail("AES-GCM: initialisation failed");
        TRY_VOID(aad(ctx.get(), true, std::span(out.data(), k_header), binding));
        // In place: GCM is a stream mode, output never runs ahead of input.
        if (EVP_EncryptUpdate(ctx.get(), payload, &n, payload, static_cast<int>(payload_size)) != 1 ||
            EVP_EncryptFinal_ex(ctx.get(), payload + n, &n) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, k_tag, payload + payload_size) != 1)
            return fail("AES-GCM: encryption failed");
    }
    out.resize(k_header + extra + payload_size);
    return out;
}

Result<std::vector<uint8_t>> BlobCodec::decode(std::span<const uint8_t> blob,
                                               std::string_view binding, size_t max_plain) {
    if (blob.size() < k_header || std::memcmp(blob.data(), k_magic, 4) != 0)
        return fail("not a corral backup blob (bad magic)", EINVAL);
    if (blob[4] != k_version)
        return fail(fmt::format("blob version {} is not supported (allowed: {})", blob[4], k_version),
                    EINVAL);
    const uint8_t flags = blob[5];
    if ((flags & ~(k_flag_zstd | k_flag_aes_gcm)) || blob[6] || blob[7])
        return fail(fmt::format("blob flags {:#x} are not known", flags), EINVAL);
    uint32_t length = 0;
    for (int i = 0; i < 4; ++i)
        length |= uint32_t(blob[8 + i]) << (8 * i);
    if (length > max_plain)
        return fail(fmt::format("blob says it holds {} bytes, at most {} allowed", length, max_plain),
                    EINVAL);
    const bool sealed = flags & k_flag_aes_gcm;
    // With a key every blob must be sealed: a plain blob would be one anybody could forge.
    if (sealed != (m_key != nullptr))
        return fail(sealed ? "blob is encrypted and no key was given"
                           : "blob is not encrypted in an encrypted repository",
                    EINVAL);
    std::vector<uint8_t> payload;
    if (sealed) {
        if (blob.size() < k_header + k_nonce + k_tag)
            return fail("encrypted blob is truncated", EINVAL);
        const uint8_t* nonce = blob.data() + k_header;
        const uint8_t* cipher = nonce + k_nonce;
        const size_t cipher_size = blob.size() - k_header - k_nonce - k_tag;
        payload.resize(cipher_size);
        CipherCtx ctx(EVP_CIPHER_CTX_new());
        int n = 0;
        if (!ctx ||
            EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, m_key->encryption.data(),
                               nonce) != 1)
            return fail("AES-GCM: initialisation failed");
        TRY_VOID(aad(ctx.get(), false, blob.subspan(0, k_header), binding));
        std::array<uint8_t, k_tag> tag{};
        std::memcpy(tag.data(), cipher + cipher_size, k_tag);
        if (EVP_DecryptUpdate(ctx.get(), payload.data(), &n, cipher, static_cast<int>(cipher_size)) != 1 ||
            EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, k_tag, tag.data()) != 1 ||
            EVP_DecryptFinal_ex(ctx.get(), payload.data() + n, &n) != 1)
            return fail("authentication failed: wrong key, or the data is damaged", EINVAL);
    } else {
        payload.assign(blob.begin() + k_header, blob.end());
    }
    if (!(flags & k_flag_zstd)) {
        if (payload.size() != length)
            return fail(fmt::format("blob holds {} bytes, its header says {}", payload.size(), length),
                        EINVAL);
        return payload;
    }
    std::vector<uint8_t> plain(length);
    size_t n = ZSTD_decompressDCtx(m_contexts->decompress, plain.data(), plain.size(), payload.data(),
                                   payload.size());
    if (ZSTD_isError(n))
        return fail(fmt::format("bad compressed data: {}", ZSTD_getErrorName(n)), EINVAL);
    if (n != length)
        return fail(fmt::format("blob decompressed to {} bytes, its header says {}", n, length), EINVAL);
    return plain;
}

}  // namespace corral::storage::backup
