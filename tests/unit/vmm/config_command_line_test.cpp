#include "vmm/config/command_line.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

namespace corral::vmm {
namespace {

Result<CommandLine> parse(std::vector<std::string> args) {
    args.insert(args.begin(), "corral-vmm");
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    return parse_command_line(static_cast<int>(argv.size()), argv.data());
}

TEST(CommandLine, ParsesFlags) {
    auto result = parse({"--kernel", "/k", "--initrd", "/i", "--memory", "1G", "--cpus", "4",
                         "--cmdline", "console=ttyS0", "--on-reboot", "restart"});
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_EQ(result->config.kernel_path, "/k");
    EXPECT_EQ(result->config.initrd_path, "/i");
    EXPECT_EQ(result->config.memory_bytes, 1ull << 30);
    EXPECT_EQ(result->config.cpus, 4u);
    EXPECT_EQ(result->config.cmdline, "console=ttyS0");
    EXPECT_EQ(result->config.on_reboot, RebootAction::Restart);
}

TEST(CommandLine, BadValuesNameTheFlag) {
    auto cpus = parse({"--kernel", "/k", "--cpus", "1000"});
    ASSERT_FALSE(cpus);
    EXPECT_NE(cpus.error().message().find("--cpus"), std::string::npos);
    auto memory = parse({"--kernel", "/k", "--memory", "lots"});
    ASSERT_FALSE(memory);
    EXPECT_NE(memory.error().message().find("--memory"), std::string::npos);
    auto reboot = parse({"--kernel", "/k", "--on-reboot", "sometimes"});
    ASSERT_FALSE(reboot);
    EXPECT_NE(reboot.error().message().find("--on-reboot"), std::string::npos);
    auto unknown = parse({"--kernel", "/k", "--frobnicate"});
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().message().find("frobnicate"), std::string::npos);
    auto missing = parse({"--cpus", "2"});
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("--kernel is required"), std::string::npos);
}

TEST(CommandLine, DisplayAndVncFlags) {
    auto result = parse({"--kernel", "/k", "--display", "1024x768", "--vnc", "unix:/run/v.sock",
                         "--vnc-view-only", "unix:/run/ro.sock"});
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_EQ(result->config.display_width, 1024u);
    EXPECT_EQ(result->config.display_height, 768u);
    EXPECT_EQ(result->config.vnc_socket_path, "/run/v.sock");
    EXPECT_EQ(result->config.vnc_view_only_socket_path, "/run/ro.sock");
    EXPECT_FALSE(parse({"--kernel", "/k"})->config.has_display()) << "no display by default";
    for (const char* bad : {"1024", "1024x", "x768", "100x100", "5000x768", "1024x768x2", "axb", "1024X768"}) {
        auto error = parse({"--kernel", "/k", "--display", bad});
        ASSERT_FALSE(error) << bad;
        EXPECT_NE(error.error().message().find("--display must be WIDTHxHEIGHT from 640x480 to 3840x2160"),
                  std::string::npos)
            << error.error().message();
    }
    auto no_display = parse({"--kernel", "/k", "--vnc", "unix:/v.sock"});
    ASSERT_FALSE(no_display);
    EXPECT_NE(no_display.error().message().find("--vnc needs --display"), std::string::npos);
    auto no_display_ro = parse({"--kernel", "/k", "--vnc-view-only", "unix:/v.sock"});
    ASSERT_FALSE(no_display_ro);
    EXPECT_NE(no_display_ro.error().message().find("--vnc-view-only needs --display"), std::string::npos);
    auto tcp = parse({"--kernel", "/k", "--display", "800x600", "--vnc", "tcp:127.0.0.1:5900"});
    ASSERT_FALSE(tcp);
    EXPECT_NE(tcp.error().message().find("--vnc must be unix:PATH"), std::string::npos);
    auto same = parse({"--kernel", "/k", "--display", "800x600", "--vnc", "unix:/a", "--vnc-view-only", "unix:/a"});
    ASSERT_FALSE(same);
    auto restore = parse({"--restore", "/snap", "--display", "800x600"});
    ASSERT_TRUE(restore);
    EXPECT_EQ(restore->restore_checks, std::vector<std::string>{"--display"}) << "checked against the snapshot";
}

TEST(CommandLine, FlagsOverrideConfigFile) {
    std::string path = ::testing::TempDir() + "/corral-vm-config.json";
    std::ofstream(path) << R"({"kernel": "/from-file", "memory": "256M", "cpus": 2})";
    auto result = parse({"--config", path, "--cpus", "3"});
    ASSERT_TRUE(result) << result.error().message();
    EXPECT_EQ(result->config.kernel_path, "/from-file");
    EXPECT_EQ(result->config.memory_bytes, 256ull << 20);
    EXPECT_EQ(result->config.cpus, 3u);
    std::remove(path.c_str());
}

TEST(CommandLine, ConfigFileErrorsNameTheFile) {
    std::string path = ::testing::TempDir() + "/corral-bad-config.json";
    std::ofstream(path) << "{not json";
    auto result = parse({"--config", path});
    ASSERT_FALSE(result);
    EXPECT_NE(result.error().message().find("is not valid JSON"), std::string::npos);
    std::remove(path.c_str());
    auto absent = parse({"--config", "/nonexistent/vm.json"});
    ASSERT_FALSE(absent);
    EXPECT_NE(absent.error().message().find("cannot read"), std::string::npos);
}

TEST(CommandLine, HelpIsEarlyOutput) {
    auto result = parse({"--help"});
    ASSERT_TRUE(result);
    ASSERT_TRUE(result->early_output);
    EXPECT_NE(result->early_output->find("--kernel"), std::string::npos);
}

}  // namespace
}  // namespace corral::vmm

namespace corral::vmm {
namespace {

TEST(CommandLine, VirtioDevicesAreOptIn) {
    auto plain = parse({"--kernel", "/k"});
    ASSERT_TRUE(plain);
    EXPECT_FALSE(plain->config.rng);
    EXPECT_FALSE(plain->config.virtio_console);
    auto both = parse({"--kernel", "/k", "--rng", "--virtio-console"});
    ASSERT_TRUE(both) << both.error().message();
    EXPECT_TRUE(both->config.rng);
    EXPECT_TRUE(both->config.virtio_console);
    auto bad = parse({"--kernel", "/k", "--rng=maybe"});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("rng"), std::string::npos) << bad.error().message();
}

TEST(CommandLine, VirtioConsoleFollowsTheSerialConsoleOrHasItsOwnSocket) {
    auto plain = parse({"--kernel", "/k", "--virtio-console", "--rng"});
    ASSERT_TRUE(plain) << plain.error().message();
    EXPECT_TRUE(plain->config.virtio_console);
    EXPECT_EQ(plain->config.virtio_console_socket_path, "");
    EXPECT_TRUE(plain->config.rng) << "a following flag is not taken as the value";
    auto socket = parse({"--kernel", "/k", "--virtio-console", "socket=/run/hvc.sock"});
    ASSERT_TRUE(socket) << socket.error().message();
    EXPECT_TRUE(socket->config.virtio_console);
    EXPECT_EQ(socket->config.virtio_console_socket_path, "/run/hvc.sock");
    auto json = vm_config_to_json(socket->config);
    EXPECT_EQ(json["virtio_console"], "socket=/run/hvc.sock");
    EXPECT_EQ(vm_config_from_json(json).value().virtio_console_socket_path, "/run/hvc.sock");

    auto bad = parse({"--kernel", "/k", "--virtio-console", "tcp=1234"});
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message(),
              "--virtio-console must be 'serial' (the default: output with the serial console's) or 'socket=PATH', "
              "got 'tcp=1234'");
    auto same = parse({"--kernel", "/k", "--console", "socket=/s", "--virtio-console", "socket=/s"});
    ASSERT_FALSE(same);
    EXPECT_EQ(same.error().message(), "--virtio-console socket=PATH must differ from --console socket=PATH");
}

}  // namespace
}  // namespace corral::vmm

namespace corral::vmm {
namespace {

TEST(CommandLine, MigrateListenTakesAnEndpointAndChecksFlagsAsARestoreDoes) {
    auto listen = parse({"--migrate-listen", "tcp:127.0.0.1:4444", "--memory", "64M", "--console", "none"});
    ASSERT_TRUE(listen) << listen.error().message();
    EXPECT_EQ(listen->migrate_listen, "tcp:127.0.0.1:4444");
    EXPECT_EQ(listen->restore_checks, std::vector<std::string>{"--memory"}) << "no --kernel needed; --memory is a check";

    auto relative = parse({"--migrate-listen", "unix:in.sock"});
    ASSERT_FALSE(relative);
    EXPECT_NE(relative.error().message().find("--migrate-listen 'unix:in.sock': the socket path must be absolute"),
              std::string::npos);
    auto both = parse({"--migrate-listen", "unix:/in.sock", "--restore", "/snap"});
    ASSERT_FALSE(both);
    EXPECT_NE(both.error().message().find("--restore and --migrate-listen exclude each other"), std::string::npos);
}

TEST(CommandLine, ControlSocketPath) {
    auto without = parse({"--kernel", "/k"});
    ASSERT_TRUE(without);
    EXPECT_EQ(without->control_path, "");
    auto with = parse({"--kernel", "/k", "--control", "/run/vm/control.sock"});
    ASSERT_TRUE(with) << with.error().message();
    EXPECT_EQ(with->control_path, "/run/vm/control.sock");
}

}  // namespace
}  // namespace corral::vmm
