#include "vmm/devices/virtio/net/frames.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

namespace corral::vmm::virtio {
namespace {

/// A chain over plain host arrays (what the queue hands out after its checks).
DescriptorChain chain_of(std::vector<std::vector<uint8_t>>& readable, std::vector<std::vector<uint8_t>>& writable) {
    DescriptorChain chain;
    for (auto& buffer : readable) {
        chain.readable.push_back({buffer.data(), static_cast<uint32_t>(buffer.size())});
        chain.readable_bytes += buffer.size();
    }
    for (auto& buffer : writable) {
        chain.writable.push_back({buffer.data(), static_cast<uint32_t>(buffer.size())});
        chain.writable_bytes += buffer.size();
    }
    return chain;
}

TEST(NetFrames, TxHeaderSplitAcrossBuffersIsCopiedAndTheFrameFollowsIt) {
    std::vector<uint8_t> first(5), second(27);  // header bytes 0-4, then 5-11 and a 20-byte frame
    first[0] = k_net_hdr_f_needs_csum;
    second[5] = 0x77;  // header byte 10: num_buffers, which the device zeroes
    std::iota(second.begin() + 7, second.end(), 1);
    std::vector<std::vector<uint8_t>> readable{first, second}, writable;
    auto chain = chain_of(readable, writable);
    auto frame = parse_tx_chain(chain, k_net_f_csum);
    ASSERT_TRUE(frame);
    EXPECT_EQ(frame->header.flags, k_net_hdr_f_needs_csum);
    EXPECT_EQ(frame->header.num_buffers, 0);
    EXPECT_EQ(frame->frame_bytes, 20u);
    ASSERT_EQ(frame->frame.size(), 1u);
    EXPECT_EQ(frame->frame[0].iov_base, readable[1].data() + 7);
    EXPECT_EQ(frame->frame[0].iov_len, 20u);
}

TEST(NetFrames, TxRejectsBadSizesAndHeaders) {
    auto parse = [](size_t frame_bytes, uint8_t flags, uint8_t gso, uint64_t features) {
        std::vector<std::vector<uint8_t>> readable{std::vector<uint8_t>(k_net_header_size + frame_bytes)}, writable;
        readable[0][0] = flags;
        readable[0][1] = gso;
        return parse_tx_chain(chain_of(readable, writable), features);
    };
    EXPECT_EQ(parse(13, 0, 0, 0).error(), TxReject::TooShort);
    EXPECT_EQ(parse(k_net_max_frame + 1, 0, 0, 0).error(), TxReject::TooLong);
    EXPECT_TRUE(parse(k_net_max_frame, 0, 0, 0));
    EXPECT_EQ(parse(60, k_net_hdr_f_needs_csum, 0, 0).error(), TxReject::BadFlags);
    EXPECT_EQ(parse(60, 2, 0, k_net_f_csum).error(), TxReject::BadFlags);
    EXPECT_EQ(parse(60, 0, k_net_hdr_gso_tcpv4, k_net_f_host_tso6).error(), TxReject::BadGso);
    EXPECT_EQ(parse(60, 0, 3, ~0ull).error(), TxReject::BadGso) << "UDP fragmentation offload is never offered";
    EXPECT_TRUE(parse(60, 0, k_net_hdr_gso_tcpv6, k_net_f_host_tso6));
}

TEST(NetFrames, RxFrameIsSpreadOverWritableBuffersWithOneBufferCounted) {
    std::vector<uint8_t> packet(k_net_header_size + 30);
    std::iota(packet.begin(), packet.end(), 0);
    std::vector<std::vector<uint8_t>> readable, writable{std::vector<uint8_t>(12), std::vector<uint8_t>(100)};
    auto chain = chain_of(readable, writable);
    EXPECT_EQ(place_rx_frame(chain, packet), RxPlacement::Delivered);
    EXPECT_EQ(writable[0][10], 1) << "num_buffers";
    EXPECT_EQ(std::memcmp(writable[1].data(), packet.data() + 12, 30), 0);
}

TEST(NetFrames, RxRefusesUselessChainsAndDropsOversizedFrames) {
    std::vector<uint8_t> packet(k_net_header_size + 100);
    std::vector<std::vector<uint8_t>> none, tiny{std::vector<uint8_t>(k_net_header_size + k_net_min_frame - 1)};
    EXPECT_EQ(place_rx_frame(chain_of(none, tiny), packet), RxPlacement::ChainRejected);
    std::vector<std::vector<uint8_t>> small{std::vector<uint8_t>(k_net_header_size + 99)};
    EXPECT_EQ(place_rx_frame(chain_of(none, small), packet), RxPlacement::FrameTooBig);
    EXPECT_EQ(small[0][0], 0) << "nothing written";
}

}  // namespace
}  // namespace corral::vmm::virtio
