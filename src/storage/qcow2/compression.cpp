#include "storage/qcow2/compression.h"

#include <fmt/format.h>
#include <zlib.h>
#include <zstd.h>

namespace corral::storage::qcow2 {

namespace {

Result<void> inflate_raw(std::span<const uint8_t> input, std::span<uint8_t> output) {
    z_stream z{};
    if (inflateInit2(&z, -15) != Z_OK) return fail("zlib: inflateInit2 failed");
    z.next_in = const_cast<Bytef*>(input.data());
    z.avail_in = uInt(input.size());
    z.next_out = output.data();
    z.avail_out = uInt(output.size());
    int rc = inflate(&z, Z_FINISH);
    size_t produced = output.size() - z.avail_out;
    inflateEnd(&z);
    // Z_BUF_ERROR with a full output buffer is fine: the stream may go on into padding.
    if ((rc == Z_STREAM_END || rc == Z_BUF_ERROR || rc == Z_OK) && produced == output.size()) return {};
    return fail(fmt::format("zlib: compressed cluster is corrupt ({} of {} bytes decoded, rc {})", produced,
                            output.size(), rc));
}

Result<void> zstd_decompress(std::span<const uint8_t> input, std::span<uint8_t> output) {
    ZSTD_DCtx* ctx = ZSTD_createDCtx();
    if (!ctx) return fail("zstd: out of memory");
    ZSTD_inBuffer in{input.data(), input.size(), 0};
    ZSTD_outBuffer out{output.data(), output.size(), 0};
    // Streaming: the compressed length in the descriptor is rounded up to sectors, so the frame
    // may be followed by garbage; stop when the cluster is complete.
    while (out.pos < out.size) {
        size_t before_in = in.pos, before_out = out.pos;
        size_t rc = ZSTD_decompressStream(ctx, &out, &in);
        if (ZSTD_isError(rc)) {
            std::string why = ZSTD_getErrorName(rc);
            ZSTD_freeDCtx(ctx);
            return fail(fmt::format("zstd: compressed cluster is corrupt: {}", why));
        }
        if (rc == 0 && out.pos < out.size) break;  // frame ended early
        if (in.pos == before_in && out.pos == before_out) break;
    }
    ZSTD_freeDCtx(ctx);
    if (out.pos != out.size)
        return fail(fmt::format("zstd: compressed cluster decodes to {} bytes, expected {}", out.pos, out.size));
    return {};
}

}  // namespace

Result<void> decompress_cluster(CompressionType type, std::span<const uint8_t> input, std::span<uint8_t> output) {
    if (type == CompressionType::Zstd) return zstd_decompress(input, output);
    return inflate_raw(input, output);
}

Result<std::vector<uint8_t>> compress_cluster(CompressionType type, std::span<const uint8_t> input,
                                              size_t max_size) {
    std::vector<uint8_t> out;
    if (type == CompressionType::Zstd) {
        out.resize(ZSTD_compressBound(input.size()));
        size_t n = ZSTD_compress(out.data(), out.size(), input.data(), input.size(), 3);
        if (ZSTD_isError(n)) return fail(fmt::format("zstd: {}", ZSTD_getErrorName(n)));
        out.resize(n);
    } else {
        z_stream z{};
        if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
            return fail("zlib: deflateInit2 failed");
        out.resize(deflateBound(&z, uLong(input.size())));
        z.next_in = const_cast<Bytef*>(input.data());
        z.avail_in = uInt(input.size());
        z.next_out = out.data();
        z.avail_out = uInt(out.size());
        int rc = deflate(&z, Z_FINISH);
        size_t n = out.size() - z.avail_out;
        deflateEnd(&z);
        if (rc != Z_STREAM_END) return fail(fmt::format("zlib: deflate failed (rc {})", rc));
        out.resize(n);
    }
    if (out.size() >= max_size) out.clear();
    return out;
}

}  // namespace corral::storage::qcow2
