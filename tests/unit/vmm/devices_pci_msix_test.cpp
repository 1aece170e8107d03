#include "vmm/devices/pci/msix.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

namespace corral::vmm {
namespace {

class RecordingVectors final : public MsiVectors {
public:
    void route(uint16_t vector, const MsiMessage& message) override { routes.push_back({vector, message}); }
    void trigger(uint16_t vector) override { triggers.push_back(vector); }

    std::vector<std::pair<uint16_t, MsiMessage>> routes;
    std::vector<uint16_t> triggers;
};

class MsixTest : public ::testing::Test {
protected:
    void write32(uint64_t offset, uint32_t value) {
        std::array<uint8_t, 4> bytes{static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8),
                                     static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 24)};
        table.write_table(offset, bytes);
    }
    uint32_t read32(uint64_t offset) {
        std::array<uint8_t, 4> bytes{};
        table.read_table(offset, bytes);
        return uint32_t{bytes[0]} | uint32_t{bytes[1]} << 8 | uint32_t{bytes[2]} << 16 | uint32_t{bytes[3]} << 24;
    }
    /// Programs vector `v` the way Linux does: address low, high, data, then unmask.
    void program(uint16_t v, uint32_t address, uint32_t data, bool unmask = true) {
        write32(16 * v + 0, address);
        write32(16 * v + 4, 0);
        write32(16 * v + 8, data);
        if (unmask) write32(16 * v + 12, 0);
    }
    uint8_t pba() {
        uint8_t bits = 0;
        table.read_pba(0, std::span(&bits, 1));
        return bits;
    }

    RecordingVectors sink;
    MsixTable table{3, sink};
};

TEST_F(MsixTest, CapabilityLayout) {
    auto capability = table.capability(0, 0x4000, 0x5000);
    EXPECT_EQ(capability[0], 0x11);
    EXPECT_EQ(capability[2] | capability[3] << 8, 2) << "table size is N - 1";
    EXPECT_EQ(capability[4] | capability[5] << 8, 0x4000);
    EXPECT_EQ(capability[8] | capability[9] << 8, 0x5000);
    EXPECT_EQ(MsixTable::capability_write_mask()[3], 0xC0);
    EXPECT_EQ(table.table_size(), 48u);
    EXPECT_EQ(table.pba_size(), 8u);
}

TEST_F(MsixTest, VectorsStartMasked) {
    for (uint16_t v = 0; v < 3; ++v) EXPECT_TRUE(table.vector_masked(v));
    EXPECT_EQ(read32(12), 1u);
}

TEST_F(MsixTest, DisabledDropsNotifications) {
    program(0, 0xFEE00000, 0x41);
    table.notify(0);
    EXPECT_TRUE(sink.triggers.empty());
    EXPECT_EQ(table.counters().dropped, 1u);
}

TEST_F(MsixTest, RoutesOnceOnUnmaskAndDelivers) {
    table.write_control(MsixTable::k_control_enable);
    program(1, 0xFEE01000, 0x42);
    ASSERT_EQ(sink.routes.size(), 1u) << "one route for the three writes plus unmask";
    EXPECT_EQ(sink.routes[0].first, 1);
    EXPECT_EQ(sink.routes[0].second, (MsiMessage{0xFEE01000, 0x42}));
    EXPECT_EQ(read32(16 + 0), 0xFEE01000u);
    EXPECT_EQ(read32(16 + 8), 0x42u);
    table.notify(1);
    EXPECT_EQ(sink.triggers, std::vector<uint16_t>{1});
}

TEST_F(MsixTest, MaskedVectorPendsAndFiresOnUnmask) {
    table.write_control(MsixTable::k_control_enable);
    program(2, 0xFEE00000, 0x43, /*unmask=*/false);
    table.notify(2);
    EXPECT_TRUE(sink.triggers.empty());
    EXPECT_TRUE(table.pending(2));
    EXPECT_EQ(pba(), 0b100);
    write32(16 * 2 + 12, 0);  // unmask
    EXPECT_EQ(sink.triggers, std::vector<uint16_t>{2});
    EXPECT_FALSE(table.pending(2));
    EXPECT_EQ(pba(), 0);
    EXPECT_EQ(table.counters().pended, 1u);
}

TEST_F(MsixTest, FunctionMaskHoldsEveryVector) {
    table.write_control(MsixTable::k_control_enable | MsixTable::k_control_function_mask);
    program(0, 0xFEE00000, 0x41);
    table.notify(0);
    EXPECT_TRUE(sink.triggers.empty());
    EXPECT_TRUE(table.pending(0));
    table.write_control(MsixTable::k_control_enable);
    EXPECT_EQ(sink.triggers, std::vector<uint16_t>{0});
}

TEST_F(MsixTest, RemaskingAndChangingTheMessageRoutesAgain) {
    table.write_control(MsixTable::k_control_enable);
    program(0, 0xFEE00000, 0x41);
    write32(12, 1);  // mask, rewrite, unmask: Linux's __pci_write_msi_msg
    program(0, 0xFEE02000, 0x51);
    ASSERT_EQ(sink.routes.size(), 2u);
    EXPECT_EQ(sink.routes[1].second, (MsiMessage{0xFEE02000, 0x51}));
}

TEST_F(MsixTest, ReservedControlBitsReadZeroAndBadOffsetsAreHarmless) {
    write32(12, 0xFFFFFFFE);
    EXPECT_EQ(read32(12), 0u);
    write32(48, 0x12345678);  // beyond the table
    EXPECT_EQ(read32(48), 0u);
    table.notify(7);  // no such vector
    EXPECT_EQ(table.counters().dropped, 1u);
}

}  // namespace
}  // namespace corral::vmm
