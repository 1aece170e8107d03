#include "vmm/config/vm_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace corral::vmm {
namespace {

TEST(VmConfigMemorySize, AcceptsUnits) {
    EXPECT_EQ(*parse_memory_size("512M", "--memory"), 512ull << 20);
    EXPECT_EQ(*parse_memory_size("2G", "--memory"), 2ull << 30);
    EXPECT_EQ(*parse_memory_size("65536K", "--memory"), 64ull << 20);
    EXPECT_EQ(*parse_memory_size("128", "--memory"), 128ull << 20);
}

TEST(VmConfigMemorySize, RejectsGarbageNamingTheFlag) {
    for (const char* text : {"", "M", "12Q", "-5M", "1.5G", "0x10M"}) {
        auto result = parse_memory_size(text, "--memory");
        ASSERT_FALSE(result) << text;
        EXPECT_NE(result.error().message().find("--memory"), std::string::npos);
        EXPECT_NE(result.error().message().find("512M"), std::string::npos);
    }
    auto huge = parse_memory_size("99999999999G", "--memory");
    ASSERT_FALSE(huge);
    EXPECT_NE(huge.error().message().find("1024G"), std::string::npos);
}

TEST(VmConfigValidate, NamesTheFieldAndRange) {
    VmConfig config;
    config.kernel_path = "/boot/vmlinuz";
    EXPECT_TRUE(validate(config));
    config.cpus = 0;
    EXPECT_EQ(validate(config).error().message(), "--cpus must be between 1 and 254, got 0");
    config.cpus = 255;
    EXPECT_FALSE(validate(config));
    config.cpus = 2;
    config.memory_bytes = 1 << 20;
    EXPECT_NE(validate(config).error().message().find("--memory must be at least 2M"),
              std::string::npos);
    config.memory_bytes = 64 << 20;
    config.kernel_path.clear();
    EXPECT_NE(validate(config).error().message().find("--kernel is required"), std::string::npos);
}

TEST(VmConfigJson, RoundTrips) {
    VmConfig config;
    config.kernel_path = "/k";
    config.initrd_path = "/i";
    config.cmdline = "console=ttyS0 quiet";
    config.memory_bytes = 768ull << 20;
    config.cpus = 3;
    config.on_reboot = RebootAction::Restart;
    config.console = ConsoleKind::None;
    auto parsed = vm_config_from_json(vm_config_to_json(config));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->kernel_path, "/k");
    EXPECT_EQ(parsed->initrd_path, "/i");
    EXPECT_EQ(parsed->cmdline, "console=ttyS0 quiet");
    EXPECT_EQ(parsed->memory_bytes, 768ull << 20);
    EXPECT_EQ(parsed->cpus, 3u);
    EXPECT_EQ(parsed->on_reboot, RebootAction::Restart);
    EXPECT_EQ(parsed->console, ConsoleKind::None);
}

TEST(VmConfigJson, RejectsUnknownKeysAndWrongTypes) {
    auto unknown = vm_config_from_json(nlohmann::json{{"kernel", "/k"}, {"ram", "1G"}});
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message().find("unknown key 'ram'"), std::string::npos);
    auto wrong = vm_config_from_json(nlohmann::json{{"cpus", "two"}});
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message().find("'cpus' must be a whole number"), std::string::npos);
    EXPECT_FALSE(vm_config_from_json(nlohmann::json{{"on_reboot", "explode"}}));
    EXPECT_FALSE(vm_config_from_json(nlohmann::json::array()));
}

}  // namespace
}  // namespace corral::vmm

namespace corral::vmm {
namespace {

TEST(VmConfigJson, VirtioDeviceKeys) {
    auto parsed = vm_config_from_json(nlohmann::json{{"kernel", "/k"}, {"rng", true}, {"virtio_console", true}});
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_TRUE(parsed->rng);
    EXPECT_TRUE(parsed->virtio_console);
    auto round_trip = vm_config_from_json(vm_config_to_json(*parsed));
    ASSERT_TRUE(round_trip);
    EXPECT_TRUE(round_trip->rng && round_trip->virtio_console);
    auto wrong = vm_config_from_json(nlohmann::json{{"rng", "yes"}});
    ASSERT_FALSE(wrong);
    EXPECT_NE(wrong.error().message().find("'rng' must be true or false"), std::string::npos);
}

TEST(VmConfigJson, BalloonIsKeptOnlyWhenOn) {
    auto parsed = vm_config_from_json(nlohmann::json{{"kernel", "/k"}, {"balloon", true}});
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_TRUE(parsed->balloon);
    EXPECT_EQ(vm_config_to_json(*parsed).value("balloon", false), true);
    parsed->balloon = false;
    // Off, the key is left out: a snapshot's config reads as it did before the balloon existed.
    EXPECT_FALSE(vm_config_to_json(*parsed).contains("balloon"));
    EXPECT_FALSE(vm_config_from_json(nlohmann::json{{"balloon", 1}}));
}

}  // namespace
}  // namespace corral::vmm

namespace corral::vmm {
namespace {

TEST(VmConfigConsole, ParsesTheThreeForms) {
    VmConfig config;
    ASSERT_TRUE(parse_console("socket=/run/corral/vm1.sock", "--console", config));
    EXPECT_EQ(config.console, ConsoleKind::Socket);
    EXPECT_EQ(config.console_socket_path, "/run/corral/vm1.sock");
    EXPECT_EQ(console_to_string(config), "socket=/run/corral/vm1.sock");
    ASSERT_TRUE(parse_console("none", "--console", config));
    EXPECT_EQ(config.console, ConsoleKind::None);
    auto bad = parse_console("pty", "--console", config);
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message(), "--console must be 'stdio', 'none' or 'socket=PATH', got 'pty'");
    EXPECT_FALSE(parse_console("socket=", "--console", config));
}

}  // namespace
}  // namespace corral::vmm
