#include "vmm/arch/x86_64/acpi.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "vmm/arch/x86_64/aml.h"
#include "vmm/arch/x86_64/layout.h"
#include "vmm/arch/x86_64/ports.h"
#include "vmm/memory/guest_memory.h"

// Checks the tables at the byte offsets given in ACPI 6.5 chapter 5, read independently of the
// structs the builder uses, and (when acpica-tools is installed) with ACPICA's own disassembler.
namespace corral::vmm::x86 {
namespace {

using Bytes = std::vector<uint8_t>;

template <typename T>
T read(const Bytes& bytes, size_t offset) {
    T value;
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

std::string text(const Bytes& bytes, size_t offset, size_t length) {
    return std::string(reinterpret_cast<const char*>(bytes.data() + offset), length);
}

uint8_t byte_sum(const Bytes& bytes) {
    return static_cast<uint8_t>(std::accumulate(bytes.begin(), bytes.end(), 0u));
}

bool contains(const Bytes& haystack, const Bytes& needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
           haystack.end();
}

size_t count(const Bytes& haystack, const Bytes& needle) {
    size_t n = 0;
    for (auto it = haystack.begin();
         (it = std::search(it, haystack.end(), needle.begin(), needle.end())) != haystack.end();
         ++it)
        ++n;
    return n;
}

/// The guest's view: follows physical pointers from the RSDP the way an OS does.
class ParsedTables {
public:
    explicit ParsedTables(AcpiTables tables) : m_tables(std::move(tables)) {}

    const Bytes& rsdp() const { return m_tables.rsdp; }

    /// The table at a guest-physical address inside the blob, cut to the length in its header.
    Bytes table_at(uint64_t address) const {
        const Bytes& blob = m_tables.tables;
        if (address < k_acpi_tables_address || address + 36 > k_acpi_tables_address + blob.size()) {
            ADD_FAILURE() << "pointer 0x" << std::hex << address << " is outside the table blob";
            return {};
        }
        size_t offset = address - k_acpi_tables_address;
        uint32_t length = read<uint32_t>(blob, offset + 4);
        if (offset + length > blob.size()) {
            ADD_FAILURE() << "table at 0x" << std::hex << address << " runs past the blob";
            return {};
        }
        return Bytes(blob.begin() + offset, blob.begin() + offset + length);
    }

    Bytes xsdt() const { return table_at(read<uint64_t>(rsdp(), 24)); }

    /// The tables the XSDT lists, by signature.
    std::map<std::string, Bytes> listed() const {
        std::map<std::string, Bytes> out;
        Bytes x = xsdt();
        for (size_t offset = 36; offset + 8 <= x.size(); offset += 8) {
            Bytes table = table_at(read<uint64_t>(x, offset));
            if (!table.empty())
                out[text(table, 0, 4)] = table;
        }
        return out;
    }

    Bytes fadt() const { return listed().at("FACP"); }
    Bytes madt() const { return listed().at("APIC"); }
    Bytes dsdt() const { return table_at(read<uint64_t>(fadt(), 140)); }

private:
    AcpiTables m_tables;
};

ParsedTables parsed(uint32_t cpus) {
    auto tables = build_acpi_tables(cpus);
    EXPECT_TRUE(tables) << (tables ? "" : tables.error().message());
    return ParsedTables(tables ? *tables : AcpiTables{});
}

void expect_gas(const Bytes& fadt, size_t offset, uint64_t port) {
    SCOPED_TRACE("generic address at FADT offset " + std::to_string(offset));
    EXPECT_EQ(fadt[offset], 1);      // System I/O
    EXPECT_EQ(fadt[offset + 1], 8);  // register bit width
    EXPECT_EQ(fadt[offset + 2], 0);  // bit offset
    EXPECT_EQ(fadt[offset + 3], 1);  // byte access
    EXPECT_EQ(read<uint64_t>(fadt, offset + 4), port);
}

// Name (_S5, Package (4) { 5, 5, 0, 0 }): NameOp, "_S5_", PackageOp, PkgLength 8, NumElements 4,
// BytePrefix 5, BytePrefix 5, ZeroOp, ZeroOp.
const Bytes k_s5_aml{0x08, '_',  'S',  '5',  '_',  0x12, 0x08,
                     0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00};

TEST(Acpi, RsdpHasBothChecksumsAndPointsAtTheXsdt) {
    auto t = parsed(2);
    const Bytes& rsdp = t.rsdp();
    ASSERT_EQ(rsdp.size(), 36u);
    EXPECT_EQ(text(rsdp, 0, 8), "RSD PTR ");
    EXPECT_EQ(byte_sum(Bytes(rsdp.begin(), rsdp.begin() + 20)), 0);  // ACPI 1.0 checksum
    EXPECT_EQ(byte_sum(rsdp), 0);                                    // extended checksum
    EXPECT_EQ(text(rsdp, 9, 6), "CORRAL");
    EXPECT_EQ(rsdp[15], 2);
    EXPECT_EQ(read<uint32_t>(rsdp, 20), 36u);
    EXPECT_EQ(text(t.xsdt(), 0, 4), "XSDT");
    EXPECT_EQ(k_acpi_rsdp_address % 16, 0u);  // Linux scans 16-byte boundaries
}

TEST(Acpi, XsdtListsFadtAndMadt) {
    auto t = parsed(2);
    Bytes xsdt = t.xsdt();
    EXPECT_EQ(xsdt.size(), 36u + 2 * 8);
    auto listed = t.listed();
    EXPECT_EQ(listed.size(), 2u);
    EXPECT_TRUE(listed.count("FACP"));
    EXPECT_TRUE(listed.count("APIC"));
}

TEST(Acpi, EveryTableChecksumsToZeroAndCarriesOurIds) {
    auto t = parsed(4);
    std::vector<Bytes> tables{t.xsdt(), t.fadt(), t.madt(), t.dsdt()};
    for (const Bytes& table : tables) {
        SCOPED_TRACE(text(table, 0, 4));
        EXPECT_EQ(read<uint32_t>(table, 4), table.size());
        EXPECT_EQ(byte_sum(table), 0);
        EXPECT_EQ(text(table, 10, 6), "CORRAL");
        EXPECT_EQ(text(table, 16, 8), "CORRALVM");
        EXPECT_EQ(text(table, 28, 4), "CRRL");
    }
}

TEST(Acpi, FadtIsHardwareReducedRevision6) {
    auto t = parsed(1);
    Bytes fadt = t.fadt();
    ASSERT_EQ(fadt.size(), 276u);
    EXPECT_EQ(fadt[8], 6);  // revision
    uint32_t flags = read<uint32_t>(fadt, 112);
    EXPECT_TRUE(flags & (1u << 20)) << "HW_REDUCED_ACPI";
    EXPECT_TRUE(flags & (1u << 10)) << "RESET_REG_SUP";
    EXPECT_TRUE(flags & (1u << 4)) << "PWR_BUTTON: no fixed power button";
    EXPECT_TRUE(flags & (1u << 5)) << "SLP_BUTTON: no fixed sleep button";
    uint16_t boot_arch = read<uint16_t>(fadt, 109);
    EXPECT_TRUE(boot_arch & (1u << 1)) << "8042 present";
    EXPECT_TRUE(boot_arch & (1u << 2)) << "VGA not present";
    EXPECT_FALSE(boot_arch & (1u << 3)) << "MSI must stay allowed";
    EXPECT_FALSE(boot_arch & (1u << 5)) << "the CMOS RTC is present";
    EXPECT_EQ(read<uint16_t>(fadt, 46), 0);     // SCI_INT: none on hardware-reduced platforms
    EXPECT_EQ(read<uint32_t>(fadt, 36), 0u);    // FIRMWARE_CTRL: no FACS
    EXPECT_EQ(read<uint64_t>(fadt, 132), 0u);   // X_FIRMWARE_CTRL
    EXPECT_EQ(read<uint32_t>(fadt, 64), 0u);    // PM1a_CNT_BLK
    EXPECT_EQ(fadt[131], 5);                    // FADT minor version: 6.5
    EXPECT_EQ(text(fadt, 268, 8), "CORRAL  ");  // hypervisor vendor identity
}

TEST(Acpi, FadtResetAndSleepRegistersAreOurPorts) {
    auto t = parsed(1);
    Bytes fadt = t.fadt();
    expect_gas(fadt, 116, k_reset_control_port);  // RESET_REG
    EXPECT_EQ(fadt[128], k_reset_control_value);  // RESET_VALUE
    EXPECT_EQ(fadt[128], 0x06);
    expect_gas(fadt, 244, k_acpi_sleep_control_port);  // SLEEP_CONTROL_REG
    expect_gas(fadt, 256, k_acpi_sleep_status_port);   // SLEEP_STATUS_REG
    EXPECT_EQ(read<uint64_t>(fadt, 244 + 4), 0x600u);
    EXPECT_EQ(read<uint64_t>(fadt, 256 + 4), 0x601u);
}

TEST(Acpi, FadtPointsAtTheDsdtThroughXDsdt) {
    auto t = parsed(1);
    Bytes fadt = t.fadt();
    EXPECT_EQ(read<uint32_t>(fadt, 40), 0u);  // the 32-bit DSDT field is unused
    Bytes dsdt = t.dsdt();
    ASSERT_GE(dsdt.size(), 36u);
    EXPECT_EQ(text(dsdt, 0, 4), "DSDT");
    EXPECT_EQ(dsdt[8], 2);  // revision 2: 64-bit integers
}

TEST(Acpi, DsdtHoldsTheS5PackageThatMakesLinuxWrite0x34) {
    auto t = parsed(1);
    Bytes dsdt = t.dsdt();
    EXPECT_EQ(count(dsdt, k_s5_aml), 1u);
    // Linux, hardware-reduced: ((SLP_TYP << 2) & 0x1C) | SLP_EN -> SLEEP_CONTROL_REG.
    uint8_t slp_typ = k_s5_aml[9];
    EXPECT_EQ(slp_typ, k_acpi_s5_sleep_type);
    EXPECT_EQ(((slp_typ << 2) & 0x1C) | 0x20, 0x34);
}

TEST(Acpi, DsdtDescribesTheLegacyDevicesWithTheirIrqs) {
    auto t = parsed(1);
    Bytes dsdt = t.dsdt();
    // Device (COM1): EisaId ("PNP0501"), IO (Decode16, 0x3F8, 0x3F8, 1, 8), IRQNoFlags () {4}.
    EXPECT_TRUE(contains(dsdt, {'C', 'O', 'M', '1'}));
    EXPECT_TRUE(contains(dsdt, {0x0C, 0x41, 0xD0, 0x05, 0x01}));
    EXPECT_TRUE(contains(dsdt, {0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00}));
    // Device (RTC): EisaId ("PNP0B00"), IO 0x70 length 2, IRQ 8.
    EXPECT_TRUE(contains(dsdt, {0x0C, 0x41, 0xD0, 0x0B, 0x00}));
    EXPECT_TRUE(contains(dsdt, {0x47, 0x01, 0x70, 0x00, 0x70, 0x00, 0x01, 0x02, 0x22, 0x00, 0x01}));
    // Device (KBD): EisaId ("PNP0303"), IO 0x60, IO 0x64, IRQ 1.
    EXPECT_TRUE(contains(dsdt, {0x0C, 0x41, 0xD0, 0x03, 0x03}));
    EXPECT_TRUE(contains(dsdt, {0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01, 0x22, 0x02, 0x00}));
    // Device (PCI0): EisaId ("PNP0A03").
    EXPECT_TRUE(contains(dsdt, {0x0C, 0x41, 0xD0, 0x0A, 0x03}));
}

class AcpiMadtForCpus : public testing::TestWithParam<uint32_t> {};

TEST_P(AcpiMadtForCpus, HasOneLocalApicPerCpuOneIoApicAndTheNmi) {
    const uint32_t cpus = GetParam();
    auto t = parsed(cpus);
    Bytes madt = t.madt();
    ASSERT_GE(madt.size(), 44u);
    EXPECT_EQ(read<uint32_t>(madt, 36), k_lapic_address);
    EXPECT_EQ(read<uint32_t>(madt, 40), 1u);  // PCAT_COMPAT

    std::vector<uint8_t> lapic_ids;
    int io_apics = 0, nmis = 0, overrides = 0;
    for (size_t offset = 44; offset < madt.size();) {
        uint8_t type = madt[offset], length = madt[offset + 1];
        ASSERT_GE(length, 2);
        ASSERT_LE(offset + length, madt.size());
        if (type == 0) {
            ASSERT_EQ(length, 8);
            EXPECT_EQ(madt[offset + 2], lapic_ids.size());    // processor UID
            EXPECT_EQ(read<uint32_t>(madt, offset + 4), 1u);  // enabled
            lapic_ids.push_back(madt[offset + 3]);
        } else if (type == 1) {
            ASSERT_EQ(length, 12);
            EXPECT_EQ(madt[offset + 2], cpus);
            EXPECT_EQ(read<uint32_t>(madt, offset + 4), k_ioapic_address);
            EXPECT_EQ(read<uint32_t>(madt, offset + 8), 0u);  // GSI base
            ++io_apics;
        } else if (type == 2) {
            ++overrides;
        } else if (type == 4) {
            ASSERT_EQ(length, 6);
            EXPECT_EQ(madt[offset + 2], 0xFF);  // all processors
            EXPECT_EQ(read<uint16_t>(madt, offset + 3), 0);
            EXPECT_EQ(madt[offset + 5], 1);  // LINT1
            ++nmis;
        } else {
            ADD_FAILURE() << "unexpected MADT entry type " << int(type);
        }
        offset += length;
    }
    ASSERT_EQ(lapic_ids.size(), cpus);
    for (uint32_t i = 0; i < cpus; ++i)
        EXPECT_EQ(lapic_ids[i], i);
    EXPECT_EQ(io_apics, 1);
    EXPECT_EQ(nmis, 1);
    EXPECT_EQ(overrides, 0);  // KVM routes ISA IRQ n to pin n: identity, no overrides
}

INSTANTIATE_TEST_SUITE_P(Cpus, AcpiMadtForCpus, testing::Values(1u, 2u, 8u, 254u));

TEST(Acpi, RejectsCpuCountsOutOfRange) {
    for (uint32_t cpus : {0u, 255u}) {
        auto tables = build_acpi_tables(cpus);
        ASSERT_FALSE(tables);
        EXPECT_NE(tables.error().message().find("--cpus must be between 1 and 254"),
                  std::string::npos);
    }
}

TEST(Acpi, LargestTablesFitBelowOneMiB) {
    auto tables = build_acpi_tables(254);
    ASSERT_TRUE(tables);
    EXPECT_LE(k_acpi_rsdp_address + tables->rsdp.size(), k_acpi_tables_address);
    EXPECT_LE(k_acpi_tables_address + tables->tables.size(), k_bios_area_end);
}

TEST(Acpi, WriteCopiesRsdpAndTables) {
    auto memory = GuestMemory::create(2 * MiB);
    ASSERT_TRUE(memory);
    ASSERT_TRUE(write_acpi_tables(*memory, 2));
    auto expected = build_acpi_tables(2);
    ASSERT_TRUE(expected);
    Bytes rsdp(expected->rsdp.size()), tables(expected->tables.size());
    ASSERT_TRUE(memory->read(k_acpi_rsdp_address, rsdp));
    ASSERT_TRUE(memory->read(k_acpi_tables_address, tables));
    EXPECT_EQ(rsdp, expected->rsdp);
    EXPECT_EQ(tables, expected->tables);
}

// AML encoding (ACPI 6.5 §20.2).

Bytes ok(Result<Bytes> result) {
    EXPECT_TRUE(result) << (result ? "" : result.error().message());
    return result ? *result : Bytes{};
}

TEST(AcpiAml, PkgLengthUsesOneToFourBytes) {
    EXPECT_EQ(ok(aml::encode_pkg_length(0x00)), (Bytes{0x00}));
    EXPECT_EQ(ok(aml::encode_pkg_length(0x3F)), (Bytes{0x3F}));
    EXPECT_EQ(ok(aml::encode_pkg_length(0x40)), (Bytes{0x40, 0x04}));
    EXPECT_EQ(ok(aml::encode_pkg_length(0xFFF)), (Bytes{0x4F, 0xFF}));
    EXPECT_EQ(ok(aml::encode_pkg_length(0x1000)), (Bytes{0x80, 0x00, 0x01}));
    EXPECT_EQ(ok(aml::encode_pkg_length(0x12345)), (Bytes{0x85, 0x34, 0x12}));
    EXPECT_EQ(ok(aml::encode_pkg_length(0xFFFFF)), (Bytes{0x8F, 0xFF, 0xFF}));
    EXPECT_EQ(ok(aml::encode_pkg_length(0x100000)), (Bytes{0xC0, 0x00, 0x00, 0x01}));
    EXPECT_EQ(ok(aml::encode_pkg_length(0x0FFFFFFF)), (Bytes{0xCF, 0xFF, 0xFF, 0xFF}));
    EXPECT_FALSE(aml::encode_pkg_length(0x10000000));
}

TEST(AcpiAml, PkgLengthCountsItsOwnBytesAcrossEncodingBoundaries) {
    auto prefix = [](size_t body_size, size_t prefix_size) {
        Bytes out = ok(aml::with_pkg_length(Bytes(body_size, 0xAA)));
        EXPECT_EQ(out.size(), body_size + prefix_size) << "body " << body_size;
        return Bytes(out.begin(), out.begin() + std::min(prefix_size, out.size()));
    };
    EXPECT_EQ(prefix(0, 1), (Bytes{0x01}));
    EXPECT_EQ(prefix(0x3E, 1), (Bytes{0x3F}));
    EXPECT_EQ(prefix(0x3F, 2), (Bytes{0x41, 0x04}));         // 0x3F + 2 = 0x41
    EXPECT_EQ(prefix(0xFFD, 2), (Bytes{0x4F, 0xFF}));        // 0xFFD + 2 = 0xFFF
    EXPECT_EQ(prefix(0xFFE, 3), (Bytes{0x81, 0x00, 0x01}));  // 0xFFE + 3 = 0x1001
}

TEST(AcpiAml, NameStrings) {
    EXPECT_EQ(ok(aml::name_string("_S5_")), (Bytes{'_', 'S', '5', '_'}));
    EXPECT_EQ(ok(aml::name_string("RTC")), (Bytes{'R', 'T', 'C', '_'}));
    EXPECT_EQ(ok(aml::name_string("\\_SB")), (Bytes{'\\', '_', 'S', 'B', '_'}));
    EXPECT_EQ(ok(aml::name_string("\\")), (Bytes{'\\', 0x00}));
    EXPECT_EQ(ok(aml::name_string("\\_SB.PCI0")),
              (Bytes{'\\', 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'}));
    EXPECT_EQ(ok(aml::name_string("A.B.C")),
              (Bytes{0x2F, 3, 'A', '_', '_', '_', 'B', '_', '_', '_', 'C', '_', '_', '_'}));
    for (const char* bad : {"", "1ABC", "ABCDE", "a", "A..B", "A."})
        EXPECT_FALSE(aml::name_string(bad)) << bad;
}

TEST(AcpiAml, IntegersUseTheShortestEncoding) {
    EXPECT_EQ(aml::integer(0), (Bytes{0x00}));
    EXPECT_EQ(aml::integer(1), (Bytes{0x01}));
    EXPECT_EQ(aml::integer(5), (Bytes{0x0A, 0x05}));
    EXPECT_EQ(aml::integer(0x1234), (Bytes{0x0B, 0x34, 0x12}));
    EXPECT_EQ(aml::integer(0x12345678), (Bytes{0x0C, 0x78, 0x56, 0x34, 0x12}));
    EXPECT_EQ(aml::integer(0x100000000), (Bytes{0x0E, 0, 0, 0, 0, 1, 0, 0, 0}));
}

TEST(AcpiAml, S5PackageEncodesExactly) {
    std::vector<Bytes> elements{aml::integer(5), aml::integer(5), aml::integer(0), aml::integer(0)};
    EXPECT_EQ(ok(aml::name("_S5_", ok(aml::package(elements)))), k_s5_aml);
}

TEST(AcpiAml, EisaIds) {
    EXPECT_EQ(ok(aml::eisa_id("PNP0501")), (Bytes{0x0C, 0x41, 0xD0, 0x05, 0x01}));
    EXPECT_EQ(ok(aml::eisa_id("PNP0A03")), (Bytes{0x0C, 0x41, 0xD0, 0x0A, 0x03}));
    for (const char* bad : {"pnp0501", "PNP050", "PNP05011", "PNP05G1"})
        EXPECT_FALSE(aml::eisa_id(bad)) << bad;
}

TEST(AcpiAml, ResourceTemplateWithIoAndIrq) {
    std::vector<Bytes> resources{aml::io_port(0x3F8, 8), ok(aml::irq_no_flags(4))};
    // Buffer: BufferOp, PkgLength 0x10, BufferSize (BytePrefix 13), IO, IRQ, End Tag.
    EXPECT_EQ(ok(aml::resource_template(resources)),
              (Bytes{0x11, 0x10, 0x0A, 0x0D, 0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08, 0x22,
                     0x10, 0x00, 0x79, 0x00}));
    EXPECT_FALSE(aml::irq_no_flags(16));
}

TEST(AcpiAml, AddressSpaceDescriptors) {
    EXPECT_EQ(ok(aml::word_bus_number(0, 0xFF)), (Bytes{0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0, 0,
                                                        0x00, 0x00, 0xFF, 0x00, 0, 0, 0x00, 0x01}));
    EXPECT_EQ(ok(aml::dword_memory(0xC0000000, 0xFEBFFFFF)),
              (Bytes{0x87, 0x17, 0x00, 0x00, 0x0C, 0x01, 0, 0, 0, 0,    0x00, 0x00, 0x00,
                     0xC0, 0xFF, 0xFF, 0xBF, 0xFE, 0,    0, 0, 0, 0x00, 0x00, 0xC0, 0x3E}));
    EXPECT_FALSE(aml::word_io(0x10, 0x0F));  // reversed
    EXPECT_FALSE(aml::word_io(0, 0xFFFF));   // length 0x10000 does not fit 16 bits
}

TEST(AcpiAml, DeviceWithALargeBodyUsesAMultiBytePkgLength) {
    Bytes body(0x100, 0x00);
    Bytes device = ok(aml::device("DEV0", body));
    // ExtOpPrefix, DeviceOp, PkgLength (2 bytes) covering itself, the name and the body.
    ASSERT_EQ(device.size(), 2u + 2 + 4 + 0x100);
    EXPECT_EQ(device[0], 0x5B);
    EXPECT_EQ(device[1], 0x82);
    uint32_t length = (device[2] & 0x0F) | (uint32_t{device[3]} << 4);
    EXPECT_EQ(device[2] >> 6, 1);
    EXPECT_EQ(length, 2u + 4 + 0x100);
}

// ACPICA's disassembler as an external oracle.

class AcpiIasl : public testing::Test {
protected:
    void SetUp() override {
        if (std::system("command -v iasl >/dev/null 2>&1") != 0)
            GTEST_SKIP() << "iasl not on PATH: install Debian package acpica-tools to check the "
                            "tables with ACPICA";
        char pattern[] = "/tmp/corral-acpi-XXXXXX";
        ASSERT_NE(::mkdtemp(pattern), nullptr);
        m_dir = pattern;
    }
    void TearDown() override {
        if (!m_dir.empty())
            std::filesystem::remove_all(m_dir);
    }

    std::filesystem::path write(const std::string& name, const Bytes& bytes) {
        std::filesystem::path path = m_dir / name;
        std::ofstream(path, std::ios::binary)
            .write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        return path;
    }

    /// Runs iasl with `args` in the temporary directory; returns its exit status and output.
    std::pair<int, std::string> iasl(const std::string& args) {
        std::string log = (m_dir / "iasl.log").string();
        std::string command =
            "cd '" + m_dir.string() + "' && iasl " + args + " >'" + log + "' 2>&1";
        int status = std::system(command.c_str());
        return {status, read_text(log)};
    }

    /// `text` with every run of whitespace turned into one space, to match listings by content.
    static std::string squeeze(const std::string& text) {
        std::string out;
        for (char c : text) {
            bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
            if (!space)
                out += c;
            else if (!out.empty() && out.back() != ' ')
                out += ' ';
        }
        return out;
    }

    static std::string read_text(const std::filesystem::path& path) {
        std::ifstream in(path);
        std::stringstream out;
        out << in.rdbuf();
        return out.str();
    }

    std::filesystem::path m_dir;
};

TEST_F(AcpiIasl, DisassemblesEveryTableWithoutErrors) {
    auto t = parsed(4);
    // (iasl 20200925 does not disassemble a bare RSDP; its checksums are checked above.)
    const std::map<std::string, Bytes> tables{
        {"dsdt", t.dsdt()}, {"facp", t.fadt()}, {"apic", t.madt()}, {"xsdt", t.xsdt()}};
    for (const auto& [name, bytes] : tables) {
        SCOPED_TRACE(name);
        write(name + ".dat", bytes);
        auto [status, output] = iasl("-d " + name + ".dat");
        EXPECT_EQ(status, 0) << output;
        std::string dsl = read_text(m_dir / (name + ".dsl"));
        EXPECT_FALSE(dsl.empty()) << output;
        // iasl marks bad checksums, lengths and unknown fields in the listing.
        for (const char* complaint : {"Incorrect checksum", "Invalid", "**** Unknown", "Error"})
            EXPECT_EQ(dsl.find(complaint), std::string::npos) << complaint << " in:\n" << dsl;
    }
    std::string facp = read_text(m_dir / "facp.dsl");
    EXPECT_NE(squeeze(facp).find("Hardware Reduced (V5) : 1"), std::string::npos) << facp;
    EXPECT_NE(squeeze(facp).find("Reset Register Supported (V2) : 1"), std::string::npos) << facp;
    std::string dsdt = squeeze(read_text(m_dir / "dsdt.dsl"));
    EXPECT_NE(
        dsdt.find("Name (_S5, Package (0x04) // _S5_: S5 System State { 0x05, 0x05, Zero, Zero })"),
        std::string::npos)
        << dsdt;
    EXPECT_NE(dsdt.find("Device (COM1) { Name (_HID, EisaId (\"PNP0501\")"), std::string::npos)
        << dsdt;
    EXPECT_NE(
        dsdt.find(
            "IO (Decode16, 0x03F8, // Range Minimum 0x03F8, // Range Maximum 0x01, // Alignment "
            "0x08, // Length ) IRQNoFlags () {4}"),
        std::string::npos)
        << dsdt;
}

TEST_F(AcpiIasl, DsdtRecompilesToTheSameAml) {
    auto t = parsed(2);
    Bytes dsdt = t.dsdt();
    write("dsdt.dat", dsdt);
    auto [disassembled, listing] = iasl("-d dsdt.dat");
    ASSERT_EQ(disassembled, 0) << listing;
    // -oa: no optimizations, or iasl would shorten \_SB to _SB_ at the root scope.
    auto [compiled, output] = iasl("-oa -p recompiled dsdt.dsl");
    ASSERT_EQ(compiled, 0) << output;
    std::ifstream in(m_dir / "recompiled.aml", std::ios::binary);
    Bytes recompiled((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_GT(recompiled.size(), 36u) << output;
    // The header differs (iasl writes its own compiler id and checksum); the AML must not.
    EXPECT_EQ(Bytes(recompiled.begin() + 36, recompiled.end()),
              Bytes(dsdt.begin() + 36, dsdt.end()));
}

}  // namespace
}  // namespace corral::vmm::x86
