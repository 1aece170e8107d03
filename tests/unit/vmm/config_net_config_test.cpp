#include "vmm/config/net_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "vmm/config/command_line.h"
#include "vmm/config/vm_config.h"

namespace corral::vmm {
namespace {

TEST(NetConfigTest, ParsesTapAndFdBackends) {
    auto tap = parse_net_option("tap=ctap0,mac=52:54:00:12:34:56", 0).value();
    EXPECT_EQ(tap.tap, "ctap0");
    EXPECT_FALSE(tap.fd);
    EXPECT_EQ(format_mac(tap.mac), "52:54:00:12:34:56");
    auto fd = parse_net_option("fd=5", 1).value();
    EXPECT_EQ(fd.fd, 5);
    EXPECT_EQ(fd.mac[0], 0x52);
    EXPECT_EQ(fd.mac[2], 0x00);
}

TEST(NetConfigTest, DefaultMacIsDeterministicAndDiffersPerNic) {
    auto a = parse_net_option("tap=t0", 0).value();
    auto again = parse_net_option("tap=t0", 0).value();
    auto b = parse_net_option("tap=t1", 1).value();
    EXPECT_EQ(a.mac, again.mac);
    EXPECT_NE(a.mac, b.mac);
    EXPECT_EQ(format_mac(a.mac).substr(0, 9), "52:54:00:");
}

TEST(NetConfigTest, ErrorsNameTheOptionAndTheBadPart) {
    auto message = [](std::string_view text) { return parse_net_option(text, 0).error().message(); };
    EXPECT_EQ(message("tap=t0,speed=10"),
              "--net: unknown key 'speed'; keys: tap, fd, mac, bps, pps, rx_bps, rx_pps, tx_bps, tx_pps");
    EXPECT_NE(message("tap=t0,mac=52:54:00:12:34").find("--net: mac '52:54:00:12:34' is not valid"),
              std::string::npos);
    EXPECT_NE(message("tap=t0,mac=52:54:00:12:34:zz").find("not hexadecimal"), std::string::npos);
    EXPECT_NE(message("tap=t0,mac=01:00:5e:00:00:01").find("multicast"), std::string::npos);
    EXPECT_NE(message("fd=x").find("--net: fd 'x'"), std::string::npos);
    EXPECT_NE(message("fd=1").find("3 or more"), std::string::npos);
    EXPECT_EQ(message("mac=52:54:00:12:34:56"), "--net: a backend is required: tap=NAME or fd=N");
    EXPECT_EQ(message("tap=a,fd=4"), "--net: give one backend, tap=NAME or fd=N");
    EXPECT_NE(message("tap=this-name-is-too-long").find("1 to 15 characters"), std::string::npos);
    EXPECT_NE(message("tap").find("not KEY=VALUE"), std::string::npos);
}

TEST(NetConfigTest, JsonRoundTrip) {
    auto document = nlohmann::json::parse(
        R"({"kernel": "k", "nets": [{"tap": "ctap0", "mac": "52:54:00:12:34:56"}, {"fd": 7}]})");
    auto config = vm_config_from_json(document).value();
    ASSERT_EQ(config.nets.size(), 2u);
    EXPECT_EQ(config.nets[0].tap, "ctap0");
    EXPECT_EQ(config.nets[1].fd, 7);
    auto back = vm_config_from_json(vm_config_to_json(config)).value();
    EXPECT_EQ(back.nets, config.nets);
    auto bad = vm_config_from_json(nlohmann::json::parse(R"({"nets": [{"tap": "t", "colour": 1}]})"));
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().message(),
              "VM config: nets[0]: unknown key 'colour'; keys: tap, fd, mac, bps, pps, rx_bps, rx_pps, tx_bps, tx_pps");
}

TEST(NetConfigTest, RateLimitsApplyToBothDirectionsOrOne) {
    auto none = parse_net_option("tap=t0", 0).value();
    EXPECT_FALSE(none.rx.limited());
    EXPECT_FALSE(none.tx.limited());
    auto both = parse_net_option("tap=t0,bps=200000,pps=1000", 0).value();
    EXPECT_EQ(both.rx, (NetRateLimit{200000, 1000}));
    EXPECT_EQ(both.tx, (NetRateLimit{200000, 1000}));
    // A direction-specific key wins over the general one, whatever the order.
    auto split = parse_net_option("tap=t0,rx_bps=5000,bps=100,tx_pps=7", 0).value();
    EXPECT_EQ(split.rx, (NetRateLimit{5000, 0}));
    EXPECT_EQ(split.tx, (NetRateLimit{100, 7}));
    auto zero = parse_net_option("tap=t0,bps=0", 0).value();
    EXPECT_FALSE(zero.rx.limited()) << "0 means unlimited";
}

TEST(NetConfigTest, BadRateLimitsNameTheKey) {
    auto message = [](std::string_view text) { return parse_net_option(text, 0).error().message(); };
    EXPECT_EQ(message("tap=t0,bps=fast"),
              "--net: bps must be a whole number of bytes per second (0: unlimited), got 'fast'");
    EXPECT_EQ(message("tap=t0,tx_pps=-3"),
              "--net: tx_pps must be a whole number of frames per second (0: unlimited), got '-3'");
    EXPECT_EQ(message("tap=t0,rx_bps="),
              "--net: rx_bps must be a whole number of bytes per second (0: unlimited), got ''");
    EXPECT_EQ(message("tap=t0,pps=1.5"),
              "--net: pps must be a whole number of frames per second (0: unlimited), got '1.5'");
    EXPECT_NE(message("tap=t0,bps=99999999999999999999999").find("--net: bps must be a whole number"),
              std::string::npos);
    EXPECT_EQ(message("tap=t0,bps=1,bps=2"), "--net: bps is given twice");
}

TEST(NetConfigTest, RateLimitsInJson) {
    auto config = vm_config_from_json(nlohmann::json::parse(
                                          R"({"kernel": "k", "nets": [{"tap": "a", "bps": 1000},
                                              {"tap": "b", "rx_bps": 10, "tx_pps": 20}]})"))
                      .value();
    EXPECT_EQ(config.nets[0].rx, (NetRateLimit{1000, 0}));
    EXPECT_EQ(config.nets[0].tx, (NetRateLimit{1000, 0}));
    EXPECT_EQ(config.nets[1].rx, (NetRateLimit{10, 0}));
    EXPECT_EQ(config.nets[1].tx, (NetRateLimit{0, 20}));
    auto json = vm_config_to_json(config);
    EXPECT_EQ(json["nets"][0]["bps"], 1000);
    EXPECT_EQ(json["nets"][1]["tx_pps"], 20);
    EXPECT_EQ(vm_config_from_json(json).value().nets, config.nets);
    for (const char* bad : {R"({"nets": [{"tap": "a", "bps": -1}]})", R"({"nets": [{"tap": "a", "pps": "10"}]})",
                            R"({"nets": [{"tap": "a", "tx_bps": 1.5}]})"}) {
        auto parsed = vm_config_from_json(nlohmann::json::parse(bad));
        ASSERT_FALSE(parsed) << bad;
        EXPECT_NE(parsed.error().message().find("VM config: nets[0]: '"), std::string::npos) << parsed.error().message();
        EXPECT_NE(parsed.error().message().find("must be a whole number"), std::string::npos);
    }
}

}  // namespace
}  // namespace corral::vmm

namespace corral::vmm {
namespace {

TEST(NetConfigTest, RepeatableOnTheCommandLineInOrder) {
    std::vector<std::string> args = {"corral-vmm", "--kernel", "k", "--net", "tap=a,mac=52:54:00:00:00:01",
                                     "--net", "fd=4"};
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    auto parsed = parse_command_line(static_cast<int>(argv.size()), argv.data());
    ASSERT_TRUE(parsed) << parsed.error().message();
    ASSERT_EQ(parsed->config.nets.size(), 2u);
    EXPECT_EQ(parsed->config.nets[0].tap, "a");
    EXPECT_EQ(parsed->config.nets[1].fd, 4);

    std::vector<std::string> bad = {"corral-vmm", "--kernel", "k", "--net", "tap=a,mac=zz"};
    std::vector<char*> bad_argv;
    for (auto& arg : bad) bad_argv.push_back(arg.data());
    auto error = parse_command_line(static_cast<int>(bad_argv.size()), bad_argv.data());
    ASSERT_FALSE(error);
    EXPECT_NE(error.error().message().find("--net: mac 'zz' is not valid"), std::string::npos);
}

}  // namespace
}  // namespace corral::vmm
