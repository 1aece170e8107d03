#include "vmm/devices/pci/config_space.h"

#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "vmm/devices/pci/host_bridge.h"
#include "vmm/devices/pci/pci_bus.h"

namespace corral::vmm {
namespace {

uint32_t read32(PciConfigSpace& config, uint16_t offset) {
    std::array<uint8_t, 4> bytes{};
    config.read(offset, bytes);
    return uint32_t{bytes[0]} | uint32_t{bytes[1]} << 8 | uint32_t{bytes[2]} << 16 | uint32_t{bytes[3]} << 24;
}
void write32(PciConfigSpace& config, uint16_t offset, uint32_t value) {
    std::array<uint8_t, 4> bytes{static_cast<uint8_t>(value), static_cast<uint8_t>(value >> 8),
                                 static_cast<uint8_t>(value >> 16), static_cast<uint8_t>(value >> 24)};
    config.write(offset, bytes);
}

PciIds test_ids() {
    return PciIds{.vendor = 0x1AF4, .device = 0x1044, .class_code = 0x00FF00, .revision = 1,
                  .subsystem_vendor = 0x1AF4, .subsystem = 4};
}

TEST(PciConfigSpaceTest, HeaderFields) {
    PciConfigSpace config(test_ids());
    EXPECT_EQ(read32(config, 0x00), 0x10441AF4u);
    EXPECT_EQ(read32(config, 0x08), 0x00FF0001u);  // class code and revision
    EXPECT_EQ(config.byte(0x0E), 0x00) << "type 0 header";
    EXPECT_EQ(read32(config, 0x2C), 0x00041AF4u);
    EXPECT_EQ(config.byte(0x3D), 0) << "no INTx pin";
}

TEST(PciConfigSpaceTest, ReadOnlyFieldsIgnoreWrites) {
    PciConfigSpace config(test_ids());
    write32(config, 0x00, 0xFFFFFFFF);
    write32(config, 0x08, 0);
    EXPECT_EQ(read32(config, 0x00), 0x10441AF4u);
    EXPECT_EQ(read32(config, 0x08), 0x00FF0001u);
    write32(config, PciConfigSpace::k_command, 0xFFFFFFFF);
    EXPECT_EQ(config.command(), 0x0547) << "only the defined command bits are writable";
}

TEST(PciConfigSpaceTest, Bar32Sizing) {
    PciConfigSpace config(test_ids());
    ASSERT_TRUE(config.set_bar(1, 0xC0010000, 0x1000, PciBarKind::Memory32).has_value());
    EXPECT_EQ(read32(config, 0x14), 0xC0010000u);
    write32(config, 0x14, 0xFFFFFFFF);
    EXPECT_EQ(read32(config, 0x14), 0xFFFFF000u) << "size mask: ~(0x1000 - 1), type bits 0";
    write32(config, 0x14, 0xC0010000);
    EXPECT_EQ(config.bar_address(1), 0xC0010000u);
}

TEST(PciConfigSpaceTest, Bar64Sizing) {
    PciConfigSpace config(test_ids());
    ASSERT_TRUE(config.set_bar(0, 0xC0000000, 0x8000, PciBarKind::Memory64).has_value());
    EXPECT_EQ(read32(config, 0x10), 0xC0000004u) << "bits 2:1 = 10b: 64-bit";
    EXPECT_EQ(read32(config, 0x14), 0u);
    write32(config, 0x10, 0xFFFFFFFF);
    write32(config, 0x14, 0xFFFFFFFF);
    EXPECT_EQ(read32(config, 0x10), 0xFFFF8004u);
    EXPECT_EQ(read32(config, 0x14), 0xFFFFFFFFu);
    write32(config, 0x10, 0xD0000000);
    write32(config, 0x14, 0x1);
    EXPECT_EQ(config.bar_address(0), 0x1D0000000u) << "the guest may move it; the owner decides";
}

TEST(PciConfigSpaceTest, UnusedBarsAndRomReadZeroAfterSizing) {
    PciConfigSpace config(test_ids());
    for (uint16_t offset : {0x10, 0x18, 0x24, 0x30}) {
        write32(config, offset, 0xFFFFFFFF);
        EXPECT_EQ(read32(config, offset), 0u) << "offset 0x" << std::hex << offset;
    }
}

TEST(PciConfigSpaceTest, BadBarsAreRefused) {
    PciConfigSpace config(test_ids());
    EXPECT_FALSE(config.set_bar(0, 0xC0000000, 0x3000, PciBarKind::Memory32).has_value());
    EXPECT_FALSE(config.set_bar(0, 0xC0001000, 0x8000, PciBarKind::Memory32).has_value());
    EXPECT_FALSE(config.set_bar(5, 0xC0000000, 0x1000, PciBarKind::Memory64).has_value());
    EXPECT_FALSE(config.set_bar(0, 0xC0000000, 8, PciBarKind::Memory32).has_value());
}

TEST(PciConfigSpaceTest, CapabilityList) {
    PciConfigSpace config(test_ids());
    EXPECT_EQ(config.u16(PciConfigSpace::k_status) & PciConfigSpace::k_status_capabilities_list, 0);
    std::vector<uint8_t> first = {0x09, 0xAA, 5, 1, 2};
    std::vector<uint8_t> second = {0x11, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    std::vector<uint8_t> second_mask(second.size(), 0);
    second_mask[3] = 0xC0;
    auto a = config.add_capability(first);
    auto b = config.add_capability(second, second_mask);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, 0x40);
    EXPECT_EQ(*b, 0x48) << "dword aligned";
    EXPECT_NE(config.u16(PciConfigSpace::k_status) & PciConfigSpace::k_status_capabilities_list, 0);
    EXPECT_EQ(config.byte(PciConfigSpace::k_capabilities_pointer), 0x40);
    EXPECT_EQ(config.byte(0x41), 0x48);
    EXPECT_EQ(config.byte(0x49), 0) << "end of list";
    write32(config, 0x48, 0xFFFFFFFF);
    EXPECT_EQ(read32(config, 0x48), 0xC2010011u) << "only the masked bits changed";
}

class PciConfigIoTest : public ::testing::Test {
protected:
    PciConfigIoTest() {
        bus->attach(0, std::make_shared<PciHostBridge>()).value();
    }
    void select(uint32_t address) {
        std::array<uint8_t, 4> bytes{static_cast<uint8_t>(address), static_cast<uint8_t>(address >> 8),
                                     static_cast<uint8_t>(address >> 16), static_cast<uint8_t>(address >> 24)};
        io.address_port()->write(0, bytes);
    }
    uint32_t read_address() {
        std::array<uint8_t, 4> bytes{};
        io.address_port()->read(0, bytes);
        return uint32_t{bytes[0]} | uint32_t{bytes[1]} << 8 | uint32_t{bytes[2]} << 16 | uint32_t{bytes[3]} << 24;
    }
    uint32_t read_data(uint64_t offset = 0, size_t size = 4) {
        std::array<uint8_t, 4> bytes{};
        io.data_port()->read(offset, std::span(bytes).first(size));
        uint32_t value = 0;
        for (size_t i = 0; i < size; ++i) value |= uint32_t{bytes[i]} << (8 * i);
        return value;
    }
    static uint32_t address(unsigned bus, unsigned slot, unsigned function, unsigned reg) {
        return 0x80000000u | bus << 16 | slot << 11 | function << 8 | reg;
    }

    std::shared_ptr<PciBus> bus = std::make_shared<PciBus>();
    PciConfigIo io{bus};
};

TEST_F(PciConfigIoTest, LinuxType1ProbeSeesTheAddressRegister) {
    // arch/x86/pci/direct.c pci_check_type1(): outb(0x01, 0xCFB), then a dword round trip.
    uint8_t one = 1;
    io.address_high_port()->write(1, std::span<const uint8_t>(&one, 1));
    select(0x80000000);
    EXPECT_EQ(read_address(), 0x80000000u);
}

TEST_F(PciConfigIoTest, ReadsTheHostBridge) {
    select(address(0, 0, 0, 0x00));
    EXPECT_EQ(read_data(), 0x0D578086u);
    select(address(0, 0, 0, 0x08));
    EXPECT_EQ(read_data() >> 8, 0x060000u) << "class: host bridge";
    EXPECT_EQ(read_data(3, 1), 0x06u) << "byte access at 0xCFF";
    EXPECT_EQ(read_data(2, 2), 0x0600u) << "word access at 0xCFE";
}

TEST_F(PciConfigIoTest, AbsentFunctionsReadAllOnes) {
    select(address(0, 1, 0, 0));
    EXPECT_EQ(read_data(), 0xFFFFFFFFu) << "empty slot";
    select(address(0, 0, 1, 0));
    EXPECT_EQ(read_data(), 0xFFFFFFFFu) << "function 1";
    select(address(1, 0, 0, 0));
    EXPECT_EQ(read_data(), 0xFFFFFFFFu) << "bus 1";
    select(address(0, 0, 0, 0) & ~0x80000000u);
    EXPECT_EQ(read_data(), 0xFFFFFFFFu) << "enable bit clear";
}

// What a snapshot saves and a restore puts back: the latch decides where the next 0xCFC goes.
TEST_F(PciConfigIoTest, ARestoredConfigAddressSelectsLikeTheGuestsOwnWrite) {
    select(address(0, 0, 0, 0x08));
    uint32_t saved = io.config_address();
    EXPECT_EQ(saved, address(0, 0, 0, 0x08));
    PciConfigIo restored{bus};
    restored.set_config_address(saved);
    std::array<uint8_t, 4> bytes{};
    restored.data_port()->read(0, bytes);
    EXPECT_EQ(bytes[3], 0x06) << "class code of the host bridge, register 0x08";
}

TEST_F(PciConfigIoTest, NarrowAddressWritesDoNotLoadTheRegister) {
    select(address(0, 0, 0, 0));
    uint8_t byte = 0x55;
    io.address_port()->write(0, std::span<const uint8_t>(&byte, 1));
    EXPECT_EQ(read_address(), address(0, 0, 0, 0));
}

TEST_F(PciConfigIoTest, AccessesCrossingTheDataDwordAreDropped) {
    select(address(0, 0, 0, 0));
    EXPECT_EQ(read_data(2, 4), 0xFFFFFFFFu);
}

TEST_F(PciConfigIoTest, SlotsAreBounded) {
    EXPECT_FALSE(bus->attach(0, std::make_shared<PciHostBridge>()).has_value()) << "taken";
    EXPECT_FALSE(bus->attach(32, std::make_shared<PciHostBridge>()).has_value()) << "no slot 32";
    EXPECT_EQ(bus->free_slot().value(), 1u);
    for (unsigned slot = 1; slot < 32; ++slot) ASSERT_TRUE(bus->attach(slot, std::make_shared<PciHostBridge>()));
    EXPECT_FALSE(bus->free_slot().has_value());
}

}  // namespace
}  // namespace corral::vmm
