#include "vmm/arch/x86_64/mptable.h"

#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "vmm/arch/x86_64/layout.h"
#include "vmm/memory/guest_memory.h"

// Checks the table against the byte offsets of the Intel MultiProcessor Specification 1.4,
// chapter 4, read independently of the structs the builder uses.
namespace corral::vmm::x86 {
namespace {

constexpr size_t k_pointer_size = 16;
constexpr size_t k_header_size = 44;
constexpr size_t k_processor_size = 20;
constexpr size_t k_small_entry_size = 8;
constexpr size_t k_fixed_entries = 1 + 1 + 16 + 2;  // bus, I/O APIC, 16 ISA IRQs, LINT0 and LINT1

template <typename T>
T read(const std::vector<uint8_t>& bytes, size_t offset) {
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

std::string text(const std::vector<uint8_t>& bytes, size_t offset, size_t length) {
    return std::string(reinterpret_cast<const char*>(bytes.data() + offset), length);
}

uint8_t byte_sum(const std::vector<uint8_t>& bytes, size_t offset, size_t length) {
    return static_cast<uint8_t>(
        std::accumulate(bytes.begin() + offset, bytes.begin() + offset + length, 0u));
}

struct Interrupt {
    uint8_t type, interrupt_type;
    uint16_t flags;
    uint8_t bus, bus_irq, destination, pin;
};

Interrupt read_interrupt(const std::vector<uint8_t>& table, size_t offset) {
    return {table[offset],     table[offset + 1], read<uint16_t>(table, offset + 2),
            table[offset + 4], table[offset + 5], table[offset + 6],
            table[offset + 7]};
}

class MpTableForCpus : public testing::TestWithParam<uint32_t> {};

TEST_P(MpTableForCpus, FloatingPointerIsValidAndPointsAtTheHeader) {
    auto table = build_mptable(GetParam());
    ASSERT_TRUE(table) << table.error().message();
    EXPECT_EQ(text(*table, 0, 4), "_MP_");
    EXPECT_EQ(read<uint32_t>(*table, 4), k_mptable_address + k_pointer_size);
    EXPECT_EQ((*table)[8], 1);   // length in paragraphs
    EXPECT_EQ((*table)[9], 4);   // spec revision 1.4
    EXPECT_EQ((*table)[11], 0);  // feature byte 1: a configuration table follows
    EXPECT_EQ((*table)[12], 0);  // feature byte 2: IMCRP clear, virtual wire mode
    EXPECT_EQ(byte_sum(*table, 0, k_pointer_size), 0);
}

TEST_P(MpTableForCpus, HeaderIsValid) {
    const uint32_t cpus = GetParam();
    auto table = build_mptable(cpus);
    ASSERT_TRUE(table);
    const size_t h = k_pointer_size;
    const size_t base_length =
        k_header_size + cpus * k_processor_size + k_fixed_entries * k_small_entry_size;
    EXPECT_EQ(table->size(), k_pointer_size + base_length);
    EXPECT_EQ(text(*table, h, 4), "PCMP");
    EXPECT_EQ(read<uint16_t>(*table, h + 4), base_length);
    EXPECT_EQ((*table)[h + 6], 4);  // spec revision
    EXPECT_EQ(byte_sum(*table, h, base_length), 0);
    EXPECT_EQ(text(*table, h + 8, 8), "CORRAL  ");
    EXPECT_EQ(read<uint16_t>(*table, h + 34), cpus + k_fixed_entries);
    EXPECT_EQ(read<uint32_t>(*table, h + 36), k_lapic_address);
    EXPECT_EQ(read<uint16_t>(*table, h + 40), 0);  // no extended table
}

TEST_P(MpTableForCpus, EntriesDescribeCpusBusIoApicAndInterrupts) {
    const uint32_t cpus = GetParam();
    auto table = build_mptable(cpus);
    ASSERT_TRUE(table);
    size_t offset = k_pointer_size + k_header_size;

    for (uint32_t i = 0; i < cpus; ++i, offset += k_processor_size) {
        SCOPED_TRACE("cpu " + std::to_string(i));
        EXPECT_EQ((*table)[offset], 0);      // processor entry
        EXPECT_EQ((*table)[offset + 1], i);  // local APIC id
        EXPECT_EQ((*table)[offset + 2], 0x14);
        EXPECT_EQ((*table)[offset + 3], i == 0 ? 0x3 : 0x1);            // EN, and BP on CPU 0 only
        EXPECT_NE(read<uint32_t>(*table, offset + 4), 0u);              // CPU signature
        EXPECT_NE(read<uint32_t>(*table, offset + 8) & (1u << 9), 0u);  // APIC feature flag
    }

    EXPECT_EQ((*table)[offset], 1);  // bus entry
    EXPECT_EQ((*table)[offset + 1], 0);
    EXPECT_EQ(text(*table, offset + 2, 6), "ISA   ");
    offset += k_small_entry_size;

    EXPECT_EQ((*table)[offset], 2);  // I/O APIC entry
    EXPECT_EQ((*table)[offset + 1], cpus);
    EXPECT_EQ((*table)[offset + 2], 0x11);
    EXPECT_EQ((*table)[offset + 3], 1);  // enabled
    EXPECT_EQ(read<uint32_t>(*table, offset + 4), k_ioapic_address);
    offset += k_small_entry_size;

    for (uint8_t irq = 0; irq < 16; ++irq, offset += k_small_entry_size) {
        SCOPED_TRACE("ISA IRQ " + std::to_string(irq));
        Interrupt entry = read_interrupt(*table, offset);
        EXPECT_EQ(entry.type, 3);
        EXPECT_EQ(entry.interrupt_type, 0);  // INT
        EXPECT_EQ(entry.flags, 0);           // conforming polarity and trigger
        EXPECT_EQ(entry.bus, 0);
        EXPECT_EQ(entry.bus_irq, irq);
        EXPECT_EQ(entry.destination, cpus);  // the I/O APIC's id
        EXPECT_EQ(entry.pin, irq);           // KVM routes ISA IRQ n to pin n, the PIT included
    }

    Interrupt lint0 = read_interrupt(*table, offset);
    EXPECT_EQ(lint0.type, 4);
    EXPECT_EQ(lint0.interrupt_type, 3);  // ExtINT
    EXPECT_EQ(lint0.destination, 0xFF);
    EXPECT_EQ(lint0.pin, 0);
    Interrupt lint1 = read_interrupt(*table, offset + k_small_entry_size);
    EXPECT_EQ(lint1.type, 4);
    EXPECT_EQ(lint1.interrupt_type, 1);  // NMI
    EXPECT_EQ(lint1.destination, 0xFF);
    EXPECT_EQ(lint1.pin, 1);
    EXPECT_EQ(offset + 2 * k_small_entry_size, table->size());
}

INSTANTIATE_TEST_SUITE_P(Cpus, MpTableForCpus, testing::Values(1u, 2u, 8u, 254u));

TEST(MpTable, RejectsCpuCountsOutOfRange) {
    for (uint32_t cpus : {0u, 255u, 1000u}) {
        auto table = build_mptable(cpus);
        ASSERT_FALSE(table) << cpus;
        EXPECT_NE(table.error().message().find("--cpus must be between 1 and 254"),
                  std::string::npos)
            << table.error().message();
    }
}

TEST(MpTable, LargestTableStaysOutOfTheAcpiArea) {
    auto table = build_mptable(k_max_cpu_count);
    ASSERT_TRUE(table);
    EXPECT_LE(k_mptable_address + table->size(), k_bios_area_start);
}

TEST(MpTable, WriteCopiesTheTableToTheEbda) {
    auto memory = GuestMemory::create(2 * MiB);
    ASSERT_TRUE(memory);
    ASSERT_TRUE(write_mptable(*memory, 2));
    auto expected = build_mptable(2);
    ASSERT_TRUE(expected);
    std::vector<uint8_t> actual(expected->size());
    ASSERT_TRUE(memory->read(k_mptable_address, actual));
    EXPECT_EQ(actual, *expected);
}

TEST(MpTable, WriteFailsWhenTheEbdaIsNotRam) {
    auto memory = GuestMemory::create(512 * KiB);
    ASSERT_TRUE(memory);
    auto written = write_mptable(*memory, 1);
    ASSERT_FALSE(written);
    EXPECT_NE(written.error().message().find("writing the MP table"), std::string::npos);
}

}  // namespace
}  // namespace corral::vmm::x86
