#include "vmm/control/control_request.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace corral::vmm {
namespace {

TEST(ControlRequest, ParsesEveryAction) {
    for (auto action : {ControlAction::Status, ControlAction::Pause, ControlAction::Resume, ControlAction::Shutdown,
                        ControlAction::Stop, ControlAction::Counters, ControlAction::Reset, ControlAction::Screenshot,
                        ControlAction::Limits}) {
        std::string line = std::string("{\"action\":\"") + to_string(action) + "\"}";
        auto parsed = parse_control_request(line);
        ASSERT_TRUE(parsed) << line << ": " << parsed.error().message();
        EXPECT_EQ(parsed->action, action);
    }
}

TEST(ControlRequest, IgnoresOtherKeysAndWhitespace) {
    auto parsed = parse_control_request(R"(  { "id": 7, "action" : "pause" } )");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->action, ControlAction::Pause);
}

TEST(ControlRequest, RejectsBadJson) {
    auto parsed = parse_control_request("{\"action\":");
    ASSERT_FALSE(parsed);
    EXPECT_NE(parsed.error().message().find("not valid JSON"), std::string::npos);
}

TEST(ControlRequest, RejectsNonObjectsAndMissingAction) {
    EXPECT_FALSE(parse_control_request("[1,2]"));
    EXPECT_FALSE(parse_control_request("\"status\""));
    auto missing = parse_control_request("{}");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("\"action\""), std::string::npos);
    EXPECT_FALSE(parse_control_request(R"({"action":3})"));
}

TEST(ControlRequest, UnknownActionListsTheKnownOnes) {
    auto parsed = parse_control_request(R"({"action":"hibernate"})");
    ASSERT_FALSE(parsed);
    EXPECT_NE(parsed.error().message().find("unknown action 'hibernate'"), std::string::npos);
    EXPECT_NE(parsed.error().message().find("status, pause, resume"), std::string::npos);
}

TEST(ControlRequest, SnapshotTakesAnAbsoluteDirAndResume) {
    auto parsed = parse_control_request(R"({"action":"snapshot","dir":"/srv/snap/1"})");
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(parsed->action, ControlAction::Snapshot);
    EXPECT_EQ(parsed->snapshot_dir, "/srv/snap/1");
    EXPECT_TRUE(parsed->resume) << "the VM runs on unless asked otherwise";
    parsed = parse_control_request(R"({"action":"snapshot","dir":"/s","resume":false})");
    ASSERT_TRUE(parsed);
    EXPECT_FALSE(parsed->resume);
    for (const char* bad : {R"({"action":"snapshot"})", R"({"action":"snapshot","dir":"relative/x"})",
                            R"({"action":"snapshot","dir":""})", R"({"action":"snapshot","dir":7})"}) {
        auto refused = parse_control_request(bad);
        ASSERT_FALSE(refused) << bad;
        EXPECT_NE(refused.error().message().find("\"dir\": an absolute path"), std::string::npos) << bad;
    }
    auto refused = parse_control_request(R"({"action":"snapshot","dir":"/s","resume":"no"})");
    ASSERT_FALSE(refused);
    EXPECT_NE(refused.error().message().find("\"resume\" must be true"), std::string::npos);
}

TEST(ControlRequest, MigrateTakesADestinationAndOptionalLimits) {
    auto parsed = parse_control_request(R"({"action":"migrate","to":"unix:/run/in.sock"})");
    ASSERT_TRUE(parsed) << parsed.error().message();
    EXPECT_EQ(parsed->action, ControlAction::Migrate);
    EXPECT_EQ(parsed->migrate_to, "unix:/run/in.sock");
    EXPECT_EQ(parsed->downtime_ms, 300u);
    EXPECT_EQ(parsed->timeout_s, 600u);
    parsed = parse_control_request(R"({"action":"migrate","to":"tcp:h:1","downtime_ms":50,"timeout_s":5})");
    ASSERT_TRUE(parsed);
    EXPECT_EQ(parsed->downtime_ms, 50u);
    EXPECT_EQ(parsed->timeout_s, 5u);

    auto missing = parse_control_request(R"({"action":"migrate"})");
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message().find("migrate needs \"to\""), std::string::npos);
    for (const char* bad : {R"({"action":"migrate","to":"unix:/x","downtime_ms":0})",
                            R"({"action":"migrate","to":"unix:/x","downtime_ms":"300"})",
                            R"({"action":"migrate","to":"unix:/x","downtime_ms":60001})"}) {
        auto refused = parse_control_request(bad);
        ASSERT_FALSE(refused) << bad;
        EXPECT_EQ(refused.error().message(), "migrate's \"downtime_ms\" must be a whole number from 1 to 60000");
    }
    auto timeout = parse_control_request(R"({"action":"migrate","to":"unix:/x","timeout_s":-1})");
    ASSERT_FALSE(timeout);
    EXPECT_EQ(timeout.error().message(), "migrate's \"timeout_s\" must be a whole number from 1 to 86400");

    auto limited = parse_control_request(R"({"action":"migrate","to":"unix:/x","max_bandwidth_bytes":1048576})");
    ASSERT_TRUE(limited);
    EXPECT_EQ(limited->max_bandwidth_bytes, 1u << 20);
    EXPECT_EQ(parsed->max_bandwidth_bytes, 0u) << "no limit unless asked";
    for (const char* bad : {R"({"action":"migrate","to":"unix:/x","max_bandwidth_bytes":1048575})",
                            R"({"action":"migrate","to":"unix:/x","max_bandwidth_bytes":"8M"})",
                            R"({"action":"migrate","to":"unix:/x","max_bandwidth_bytes":1.5e6})",
                            R"({"action":"migrate","to":"unix:/x","max_bandwidth_bytes":1099511627777})"}) {
        auto refused = parse_control_request(bad);
        ASSERT_FALSE(refused) << bad;
        EXPECT_EQ(refused.error().message(),
                  "migrate's \"max_bandwidth_bytes\" must be a whole number from 1048576 to 1099511627776");
    }
}

TEST(ControlRequest, BalloonTakesAnOptionalTarget) {
    auto read = parse_control_request(R"({"action":"balloon"})");
    ASSERT_TRUE(read);
    EXPECT_EQ(read->action, ControlAction::Balloon);
    EXPECT_FALSE(read->balloon_target_bytes);
    auto set = parse_control_request(R"({"action":"balloon","target_bytes":134217728})");
    ASSERT_TRUE(set);
    EXPECT_EQ(set->balloon_target_bytes, 134217728u);
    for (const char* bad : {R"({"action":"balloon","target_bytes":-1})", R"({"action":"balloon","target_bytes":"1G"})",
                            R"({"action":"balloon","target_bytes":1.5})"}) {
        auto refused = parse_control_request(bad);
        ASSERT_FALSE(refused) << bad;
        EXPECT_NE(refused.error().message().find("target_bytes"), std::string::npos);
    }
}

TEST(ControlRequest, LimitsTakesThreeRatesAndLeftOutIsUnlimited) {
    auto set = parse_control_request(
        R"({"action":"limits","disk_bytes_per_s":1048576,"disk_ops_per_s":100,"nic_bytes_per_s":65536})");
    ASSERT_TRUE(set) << set.error().message();
    EXPECT_EQ(set->action, ControlAction::Limits);
    EXPECT_EQ(set->limits.disk_bytes_per_s, 1048576u);
    EXPECT_EQ(set->limits.disk_ops_per_s, 100u);
    EXPECT_EQ(set->limits.nic_bytes_per_s, 65536u);
    auto none = parse_control_request(R"({"action":"limits"})");
    ASSERT_TRUE(none);
    EXPECT_EQ(none->limits.disk_bytes_per_s, 0u);
    EXPECT_EQ(none->limits.nic_bytes_per_s, 0u);
    for (const char* bad :
         {R"({"action":"limits","disk_bytes_per_s":-1})", R"({"action":"limits","nic_bytes_per_s":"1M"})",
          R"({"action":"limits","disk_ops_per_s":1.5})", R"({"action":"limits","disk_bytes_per_s":2199023255552})"}) {
        auto refused = parse_control_request(bad);
        ASSERT_FALSE(refused) << bad;
        EXPECT_NE(refused.error().message().find("limits' \""), std::string::npos) << refused.error().message();
    }
}

TEST(ControlRequest, DiskSnapshotTakesAnOptionalGenerationBitmap) {
    auto plain = parse_control_request(R"({"action":"disk_snapshot","tag":"corral-backup-1"})");
    ASSERT_TRUE(plain) << plain.error().message();
    EXPECT_FALSE(plain->disk_snapshot_bitmap) << "no bitmap unless asked";
    auto parsed = parse_control_request(
        R"({"action":"disk_snapshot","tag":"corral-backup-1","bitmap":{"name":"corral-gen-web-2","replaces":"corral-gen-"}})");
    ASSERT_TRUE(parsed) << parsed.error().message();
    ASSERT_TRUE(parsed->disk_snapshot_bitmap);
    EXPECT_EQ(parsed->disk_snapshot_bitmap->name, "corral-gen-web-2");
    EXPECT_EQ(parsed->disk_snapshot_bitmap->replaces, "corral-gen-");
    auto no_prefix = parse_control_request(R"({"action":"disk_snapshot","tag":"t","bitmap":{"name":"g"}})");
    ASSERT_TRUE(no_prefix) << no_prefix.error().message();
    EXPECT_EQ(no_prefix->disk_snapshot_bitmap->replaces, "") << "none goes";

    const std::string long_name(1024, 'g');
    const std::pair<std::string, std::string> bad[] = {
        {R"({"action":"disk_snapshot","tag":"t","bitmap":"gen-2"})", "must be an object"},
        {R"({"action":"disk_snapshot","tag":"t","bitmap":{}})", "needs \"name\""},
        {R"({"action":"disk_snapshot","tag":"t","bitmap":{"name":7}})", "needs \"name\""},
        {R"({"action":"disk_snapshot","tag":"t","bitmap":{"name":""}})", "needs \"name\""},
        {R"({"action":"disk_snapshot","tag":"t","bitmap":{"name":"two words"}})", "1 to 1023 printable"},
        {R"({"action":"disk_snapshot","tag":"t","bitmap":{"name":"tab\there"}})", "1 to 1023 printable"},
        {R"({"action":"disk_snapshot","tag":"t","bitmap":{"name":")" + long_name + R"("}})", "1 to 1023 printable"},
        {R"({"action":"disk_snapshot","tag":"t","bitmap":{"name":"g","replaces":["x"]}})", "\"replaces\" must be"},
        {R"({"action":"disk_snapshot","tag":"t","bitmap":{"name":"g","replaces":"a b"}})", "\"replaces\" must be"},
        {R"({"action":"disk_snapshot","tag":"t","delete":true,"bitmap":{"name":"g"}})", "not with \"delete\""},
    };
    for (const auto& [line, why] : bad) {
        auto refused = parse_control_request(line);
        ASSERT_FALSE(refused) << line;
        EXPECT_NE(refused.error().message().find(why), std::string::npos) << line << ": " << refused.error().message();
    }
    EXPECT_TRUE(parse_control_request(R"({"action":"disk_snapshot","tag":"t","bitmap":{"name":")" +
                                      std::string(1023, 'g') + R"("}})"))
        << "1023 bytes is QEMU's longest name";
}

TEST(ControlRequest, ErrorAnswerIsOneJsonLine) {
    std::string answer = control_error_answer("bad \"thing\"\nhere");
    EXPECT_EQ(answer.find('\n'), std::string::npos);
    auto document = nlohmann::json::parse(answer);
    EXPECT_EQ(document["ok"], false);
    EXPECT_EQ(document["error"], "bad \"thing\"\nhere");
}

}  // namespace
}  // namespace corral::vmm
