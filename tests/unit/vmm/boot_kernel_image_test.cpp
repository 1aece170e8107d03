#include "vmm/boot/kernel_image.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "boot_test_kernels.h"

namespace corral::vmm {
namespace {

using namespace testing;
using ::testing::HasSubstr;

std::string parse_error(const std::vector<uint8_t>& file) {
    auto image = parse_kernel_image(file);
    if (image)
        return "(parsed)";
    return image.error().message();
}

// boot.rst offsets of the header fields the tests corrupt.
constexpr size_t k_boot_flag_offset = 0x1FE;
constexpr size_t k_header_magic_offset = 0x202;
constexpr size_t k_pref_address_offset = 0x258;

TEST(KernelImage, ParsesBzImage) {
    auto file = make_bzimage();
    auto image = parse_kernel_image(file);
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(image->format, KernelFormat::BzImage);
    const BzImageInfo& info = image->bzimage;
    EXPECT_EQ(info.protocol_version, 0x020f);
    EXPECT_EQ(info.setup_sects, 1);
    EXPECT_EQ(info.payload_offset, 2 * 512u);
    EXPECT_EQ(info.payload_size, 0x3000u);
    EXPECT_EQ(info.pref_address, 0x100000u);
    EXPECT_EQ(info.kernel_alignment, 0x200000u);
    EXPECT_TRUE(info.relocatable);
    EXPECT_EQ(info.init_size, 0x20000u);
    EXPECT_TRUE(info.xloadflags & XLF_KERNEL_64);
    EXPECT_EQ(image->cmdline_size, 2047u);
    EXPECT_EQ(image->initrd_addr_max, 0x7fffffffu);
    // Header bytes 0x1F1 .. 0x202 + 0x6a, verbatim from the file.
    ASSERT_EQ(info.setup_header.size(), 0x26cu - 0x1f1u);
    EXPECT_TRUE(
        std::equal(info.setup_header.begin(), info.setup_header.end(), file.begin() + 0x1f1));
}

TEST(KernelImage, SetupSectsZeroMeansFour) {
    auto image = parse_kernel_image(make_bzimage({.setup_sects = 0}));
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(image->bzimage.setup_sects, 4);
    EXPECT_EQ(image->bzimage.payload_offset, 5 * 512u);
}

TEST(KernelImage, AcceptsProtocol212HeaderEndingAtHandoverOffset) {
    auto image = parse_kernel_image(make_bzimage({.version = 0x020c, .jump_offset = 0x66}));
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(image->bzimage.setup_header.size(), 0x268u - 0x1f1u);
}

TEST(KernelImage, RejectsEmptyFile) {
    EXPECT_EQ(parse_error({}), "kernel file is empty");
}

TEST(KernelImage, RejectsFileTooShortForAHeader) {
    EXPECT_EQ(parse_error(std::vector<uint8_t>(300, 0x90)),
              "kernel file is 300 bytes; too short for a bzImage setup header");
}

TEST(KernelImage, RejectsFileThatIsNeitherFormat) {
    EXPECT_EQ(parse_error(std::vector<uint8_t>(64 * 1024, 0)),
              "not a Linux kernel: no bzImage header and no ELF magic");
}

TEST(KernelImage, RejectsTruncatedSetupHeader) {
    auto file = make_bzimage();
    file.resize(0x230);  // "HdrS" and the version are there; the 2.12 fields are not
    EXPECT_THAT(parse_error(file),
                HasSubstr("kernel file is 560 bytes; too short for a bzImage setup header"));
}

TEST(KernelImage, RejectsBadBootFlag) {
    auto file = make_bzimage();
    poke<uint16_t>(file, k_boot_flag_offset, 0x1234);
    EXPECT_THAT(parse_error(file), HasSubstr("boot_flag at 0x1fe is 0x1234; expected 0xaa55"));
}

TEST(KernelImage, RejectsOldProtocol) {
    EXPECT_EQ(
        parse_error(make_bzimage({.version = 0x0206})),
        "bzImage boot protocol 2.06 is too old; 2.12 or later is needed for the 64-bit entry");
}

TEST(KernelImage, RejectsMissingKernel64Flag) {
    EXPECT_THAT(parse_error(make_bzimage({.xloadflags = XLF_CAN_BE_LOADED_ABOVE_4G})),
                HasSubstr("XLF_KERNEL_64 is clear in xloadflags"));
}

TEST(KernelImage, RejectsZImage) {
    EXPECT_THAT(parse_error(make_bzimage({.loadflags = 0})), HasSubstr("zImage"));
}

TEST(KernelImage, RejectsSetupSectsPastEndOfFile) {
    auto file = make_bzimage({.payload_size = 0x100});
    file[0x1f1] = 200;  // setup_sects: the payload would start at 201 * 512
    EXPECT_EQ(parse_error(file),
              "bzImage setup_sects (200) puts the protected-mode kernel at offset 0x19200, past "
              "the end of the 1280-byte file");
}

TEST(KernelImage, RejectsTruncatedPayload) {
    auto file = make_bzimage({.payload_size = 0x3000});
    file.resize(file.size() - 0x1000);
    EXPECT_THAT(parse_error(file),
                HasSubstr("bzImage is truncated: syssize says the protected-mode "
                          "kernel is 12288 bytes but the file has 8192"));
}

TEST(KernelImage, RejectsHeaderLengthOutOfRange) {
    EXPECT_THAT(
        parse_error(make_bzimage({.jump_offset = 0x20})),
        HasSubstr("setup header ends at 0x222; boot protocol 2.15 needs it to reach 0x264"));
    EXPECT_THAT(parse_error(make_bzimage({.jump_offset = 0xf0})),
                HasSubstr("setup header ends at 0x2f2, past boot_params' limit 0x290"));
}

TEST(KernelImage, RejectsAlignmentThatIsNotAPowerOfTwo) {
    EXPECT_THAT(parse_error(make_bzimage({.kernel_alignment = 0x300000})),
                HasSubstr("kernel_alignment 0x300000 is not a power of two"));
}

TEST(KernelImage, ParsesElfWithTwoSegments) {
    auto image = parse_kernel_image(make_test_guest_elf());
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(image->format, KernelFormat::Elf);
    ASSERT_EQ(image->segments.size(), 2u);
    EXPECT_EQ(image->segments[0].guest_address, 0x100000u);
    EXPECT_EQ(image->segments[0].file_size, 0x1000u);
    EXPECT_EQ(image->segments[0].file_offset, k_elf_phoff + 2 * sizeof(Elf64_Phdr));
    EXPECT_EQ(image->segments[1].guest_address, 0x200000u);
    EXPECT_EQ(image->segments[1].file_size, 0x800u);
    EXPECT_EQ(image->segments[1].memory_size, 0x3000u);
    EXPECT_EQ(image->elf_entry, 0x100010u);
    EXPECT_EQ(image->cmdline_size, k_elf_cmdline_size);
}

TEST(KernelImage, ElfSkipsNonLoadSegments) {
    auto image = parse_kernel_image(
        make_elf({{0, 0, 0x10, 0x10, PT_NOTE}, {0x100000, 0x100000, 0x100, 0x100}}, 0x100000));
    ASSERT_TRUE(image) << image.error().message();
    ASSERT_EQ(image->segments.size(), 1u);
    EXPECT_EQ(image->segments[0].index, 1u);
}

TEST(KernelImage, ElfTranslatesHighVirtualEntry) {
    // Like vmlinux: linked at 0xffffffff81000000, loaded at 16 MiB.
    auto image = parse_kernel_image(
        make_elf({{0x1000000, 0xffffffff81000000, 0x2000, 0x4000}}, 0xffffffff81000040));
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(image->elf_entry, 0x1000040u);
}

TEST(KernelImage, ElfKeepsPhysicalEntryOfVmlinux) {
    // Debian 6.1's vmlinux: e_entry is phys_startup_64 (already physical), and the per-CPU
    // segment is linked at virtual 0, so a virtual-first lookup could pick the wrong segment.
    auto image = parse_kernel_image(make_elf(
        {{0x1000000, 0xffffffff81000000, 0x2000, 0x4000}, {0x3044000, 0, 0x100, 0x2000000}},
        0x1000000));
    ASSERT_TRUE(image) << image.error().message();
    EXPECT_EQ(image->elf_entry, 0x1000000u);
}

TEST(KernelImage, RejectsElfTruncatedHeader) {
    auto file = make_test_guest_elf();
    file.resize(40);
    EXPECT_THAT(parse_error(file),
                HasSubstr("ELF kernel is 40 bytes; too short for the 64-byte ELF header"));
}

TEST(KernelImage, RejectsElfOfTheWrongKind) {
    auto file = make_test_guest_elf();
    file[EI_CLASS] = ELFCLASS32;
    EXPECT_THAT(parse_error(file), HasSubstr("not 64-bit"));
    file = make_test_guest_elf();
    poke<uint16_t>(file, offsetof(Elf64_Ehdr, e_machine), EM_AARCH64);
    EXPECT_THAT(parse_error(file), HasSubstr("ELF kernel is for machine 183, not x86-64 (62)"));
    file = make_test_guest_elf();
    poke<uint16_t>(file, offsetof(Elf64_Ehdr, e_type), ET_DYN);
    EXPECT_THAT(parse_error(file), HasSubstr("not an executable"));
    file = make_test_guest_elf();
    poke<uint16_t>(file, offsetof(Elf64_Ehdr, e_phentsize), 32);
    EXPECT_THAT(parse_error(file), HasSubstr("program header size is 32 bytes; expected 56"));
}

TEST(KernelImage, RejectsElfProgramHeadersPastEndOfFile) {
    auto file = make_test_guest_elf();
    poke<uint64_t>(file, offsetof(Elf64_Ehdr, e_phoff), 0x100000);
    EXPECT_THAT(parse_error(file), HasSubstr("ELF program header table offset 0x100000 is past the "
                                             "end of the"));
    file = make_test_guest_elf();
    poke<uint64_t>(file, offsetof(Elf64_Ehdr, e_phoff), file.size() - 8);
    EXPECT_THAT(parse_error(file), HasSubstr("extends past the end of the"));
    file = make_test_guest_elf();
    poke<uint64_t>(file, offsetof(Elf64_Ehdr, e_phoff), UINT64_MAX - 8);
    EXPECT_THAT(parse_error(file), HasSubstr("is past the end of the"));
}

TEST(KernelImage, RejectsElfWithoutProgramHeaders) {
    auto file = make_test_guest_elf();
    poke<uint16_t>(file, offsetof(Elf64_Ehdr, e_phnum), 0);
    EXPECT_EQ(parse_error(file), "ELF kernel has no program headers");
    EXPECT_EQ(parse_error(make_elf({{0, 0, 0x10, 0x10, PT_NOTE}}, 0)),
              "ELF kernel has no loadable (PT_LOAD) segments");
}

TEST(KernelImage, RejectsElfSegmentPastEndOfFile) {
    auto file = make_test_guest_elf();
    poke<uint64_t>(file, elf_phdr_offset(1) + offsetof(Elf64_Phdr, p_filesz), 0x1800);
    poke<uint64_t>(file, elf_phdr_offset(1) + offsetof(Elf64_Phdr, p_memsz), 0x3000);
    EXPECT_THAT(parse_error(file), HasSubstr("ELF segment 1 extends past the end of the file"));
    // An offset chosen so that offset + size wraps to a small number.
    file = make_test_guest_elf();
    poke<uint64_t>(file, elf_phdr_offset(1) + offsetof(Elf64_Phdr, p_offset), UINT64_MAX - 0x10);
    EXPECT_THAT(parse_error(file), HasSubstr("ELF segment 1 extends past the end of the file"));
}

TEST(KernelImage, RejectsElfSegmentWrappingTheAddressSpace) {
    auto file = make_elf({{0x100000, 0x100000, 0x100, 0x100},
                          {0xfffffffffffff000, 0xfffffffffffff000, 0x100, 0x2000}},
                         0x100000);
    EXPECT_THAT(parse_error(file), HasSubstr("ELF segment 1 (0x2000 bytes at physical "
                                             "0xfffffffffffff000, virtual 0xfffffffffffff000) "
                                             "wraps around the 64-bit address space"));
}

TEST(KernelImage, RejectsElfFileSizeLargerThanMemorySize) {
    EXPECT_THAT(parse_error(make_elf({{0x100000, 0x100000, 0x200, 0x100}}, 0x100000)),
                HasSubstr("ELF segment 0 has p_filesz 0x200 larger than p_memsz 0x100"));
}

TEST(KernelImage, RejectsElfEntryOutsideSegments) {
    EXPECT_EQ(parse_error(make_elf({{0x100000, 0x100000, 0x100, 0x1000}}, 0x500000)),
              "ELF entry point 0x500000 is not inside any loadable segment");
}

// The whole kernel parses, and every shorter prefix of it is refused with an error, never read
// past its end (the sanitized build catches a stray read).
TEST(KernelImage, EveryTruncationFailsCleanly) {
    const std::pair<std::vector<uint8_t>, KernelFormat> files[] = {
        {make_bzimage({.payload_size = 0x100}), KernelFormat::BzImage},
        {make_test_guest_elf(), KernelFormat::Elf}};
    for (const auto& [file, format] : files) {
        auto whole = parse_kernel_image(file);
        ASSERT_TRUE(whole) << whole.error().describe();
        EXPECT_EQ(whole->format, format);
        // syssize counts 16-byte paragraphs, rounded up: a bzImage may lack up to 15 bytes of
        // padding at its end (the parser allows that), so those prefixes may parse.
        const size_t must_fail_below = format == KernelFormat::BzImage ? file.size() - 15 : file.size();
        for (size_t length = 0; length < must_fail_below; ++length) {
            std::vector<uint8_t> prefix(file.begin(), file.begin() + length);
            auto image = parse_kernel_image(prefix);
            EXPECT_FALSE(image) << "a " << length << "-byte prefix of a " << file.size() << "-byte kernel parsed";
            if (image) break;
        }
    }
}

// Never crashes, and keeps its promise either way: what it accepts lies inside the file (the
// loader copies those ranges), and what it refuses comes with a message.
TEST(KernelImage, RandomCorruptionNeverCrashes) {
    std::mt19937 random(1234);
    int accepted = 0;
    for (int round = 0; round < 2000; ++round) {
        auto file = round % 2 ? make_bzimage({.payload_size = 0x200}) : make_test_guest_elf();
        for (int flips = 0; flips < 4; ++flips) {
            // Corrupt mostly the headers, where the parser looks.
            size_t offset = random() % std::min<size_t>(file.size(), 0x300);
            file[offset] = static_cast<uint8_t>(random());
        }
        auto image = parse_kernel_image(file);
        if (!image) {
            EXPECT_FALSE(image.error().message().empty()) << "round " << round;
            continue;
        }
        ++accepted;
        if (image->format == KernelFormat::BzImage) {
            EXPECT_LE(image->bzimage.payload_offset, file.size()) << "round " << round;
            EXPECT_LE(image->bzimage.payload_size, file.size() - image->bzimage.payload_offset) << "round " << round;
        }
        for (const ElfSegment& segment : image->segments) {
            EXPECT_LE(segment.file_offset, file.size()) << "round " << round;
            EXPECT_LE(segment.file_size, file.size() - segment.file_offset) << "round " << round;
            EXPECT_GE(segment.memory_size, segment.file_size) << "round " << round;
        }
    }
    // Four flipped header bytes often miss what matters: both outcomes are exercised.
    EXPECT_GT(accepted, 0);
    EXPECT_LT(accepted, 2000);
}

}  // namespace
}  // namespace corral::vmm
