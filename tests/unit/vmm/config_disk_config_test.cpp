#include "vmm/config/disk_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "vmm/config/command_line.h"
#include "vmm/config/vm_config.h"

namespace corral::vmm {
namespace {

Result<CommandLine> parse(std::vector<std::string> args) {
    args.insert(args.begin(), "corral-vmm");
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

TEST(DiskConfig, ParsesAllKeys) {
    auto disk = parse_disk_option("path=/img/ro.qcow2,readonly=on,serial=corral-ro,format=qcow2,bps=1000,iops=50");
    ASSERT_TRUE(disk) << disk.error().message();
    EXPECT_EQ(disk->path, "/img/ro.qcow2");
    EXPECT_TRUE(disk->read_only);
    EXPECT_EQ(disk->serial, "corral-ro");
    EXPECT_EQ(disk->format, DiskFormat::Qcow2);
    EXPECT_EQ(disk->bytes_per_second, 1000u);
    EXPECT_EQ(disk->ops_per_second, 50u);
    auto plain = parse_disk_option("path=a.raw");
    ASSERT_TRUE(plain);
    EXPECT_FALSE(plain->read_only);
    EXPECT_EQ(plain->format, DiskFormat::Probe);
}

TEST(DiskConfig, ErrorsNameTheOptionAndTheKey) {
    auto unknown = parse_disk_option("path=a,size=1G");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().message(),
              "--disk: unknown key 'size'; allowed: path, readonly, serial, format, bps, iops");
    auto readonly = parse_disk_option("path=a,readonly=maybe");
    ASSERT_FALSE(readonly);
    EXPECT_NE(readonly.error().message().find("readonly must be 'on' or 'off', got 'maybe'"), std::string::npos);
    auto format = parse_disk_option("path=a,format=vmdk");
    ASSERT_FALSE(format);
    EXPECT_NE(format.error().message().find("'raw' or 'qcow2', got 'vmdk'"), std::string::npos);
    auto bps = parse_disk_option("path=a,bps=fast");
    ASSERT_FALSE(bps);
    EXPECT_NE(bps.error().message().find("bps"), std::string::npos);
    auto serial = parse_disk_option("path=a,serial=123456789012345678901");
    ASSERT_FALSE(serial);
    EXPECT_NE(serial.error().message().find("longer than 20"), std::string::npos);
    auto no_path = parse_disk_option("readonly=on");
    ASSERT_FALSE(no_path);
    EXPECT_NE(no_path.error().message().find("path=FILE is required"), std::string::npos);
    EXPECT_FALSE(parse_disk_option("path=a,noequals"));
}

TEST(DiskConfig, RepeatableOnTheCommandLineInOrder) {
    auto result = parse({"--kernel", "/k", "--disk", "path=a.raw", "--disk", "path=b.qcow2,readonly=on,serial=x"});
    ASSERT_TRUE(result) << result.error().message();
    ASSERT_EQ(result->config.disks.size(), 2u);
    EXPECT_EQ(result->config.disks[0].path, "a.raw");
    EXPECT_EQ(result->config.disks[1].path, "b.qcow2");
    EXPECT_TRUE(result->config.disks[1].read_only);
    auto bad = parse({"--kernel", "/k", "--disk", "path=a,size=1"});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("--disk: unknown key 'size'"), std::string::npos);
}

TEST(DiskConfig, JsonRoundTrip) {
    nlohmann::json document = {{"kernel", "/k"},
                               {"disks", {{{"path", "a.raw"}},
                                          {{"path", "b.qcow2"}, {"readonly", true}, {"serial", "s"},
                                           {"format", "qcow2"}, {"bps", 100}, {"iops", 5}}}}};
    auto config = vm_config_from_json(document);
    ASSERT_TRUE(config) << config.error().message();
    ASSERT_EQ(config->disks.size(), 2u);
    EXPECT_EQ(config->disks[1].format, DiskFormat::Qcow2);
    auto again = vm_config_from_json(vm_config_to_json(*config));
    ASSERT_TRUE(again);
    EXPECT_EQ(again->disks, config->disks);

    auto bad = vm_config_from_json({{"kernel", "/k"}, {"disks", {{{"path", "a"}, {"size", 1}}}}});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("disks[0]: unknown key 'size'"), std::string::npos);
    EXPECT_FALSE(vm_config_from_json({{"kernel", "/k"}, {"disks", {{{"readonly", true}}}}}));
    EXPECT_FALSE(vm_config_from_json({{"kernel", "/k"}, {"disks", "a.raw"}}));
}

}  // namespace
}  // namespace corral::vmm
