#include "cli/alarm_commands.h"

#include <gtest/gtest.h>

#include "command_line_support.h"

namespace corral::cli {
namespace {

using json = nlohmann::json;
using testing::parse;
using testing::request;

TEST(AlarmCommands, Verbs) {
    EXPECT_EQ(parse({"alarm", "create", "busy", "--metric", "vm.cpu", "--above", "0.8", "--vm", "web", "--for", "2m",
                     "--webhook", "http://127.0.0.1:9/h"})
                  .request,
              request("POST", "/api/v1/alarms",
                      json{{"name", "busy"},
                           {"metric", "vm.cpu"},
                           {"above", 0.8},
                           {"vm", "web"},
                           {"for_seconds", 120},
                           {"webhook", "http://127.0.0.1:9/h"}}));
    EXPECT_EQ(parse({"alarm", "create", "low", "--metric", "host.memory", "--below", "1e9"}).request,
              request("POST", "/api/v1/alarms", json{{"name", "low"}, {"metric", "host.memory"}, {"below", 1e9}}));
    EXPECT_EQ(parse({"alarm", "list"}).request, request("GET", "/api/v1/alarms"));
    EXPECT_EQ(parse({"alarm", "show", "busy"}).request, request("GET", "/api/v1/alarms/busy"));
    EXPECT_EQ(parse({"alarm", "delete", "busy"}).request, request("DELETE", "/api/v1/alarms/busy"));
    // Refused before any request: no threshold, both, a duration that is none.
    EXPECT_EQ(parse_command_line({"alarm", "create", "x", "--metric", "vm.cpu"}).exit_code, 2);
    EXPECT_EQ(
        parse_command_line({"alarm", "create", "x", "--metric", "vm.cpu", "--above", "1", "--below", "0"}).exit_code,
        2);
    EXPECT_EQ(
        parse_command_line({"alarm", "create", "x", "--metric", "vm.cpu", "--above", "1", "--for", "5x"}).exit_code, 2);
}

TEST(AlarmCommands, Durations) {
    EXPECT_EQ(parse_alarm_duration("90"), 90u);
    EXPECT_EQ(parse_alarm_duration("90s"), 90u);
    EXPECT_EQ(parse_alarm_duration("5m"), 300u);
    EXPECT_EQ(parse_alarm_duration("1h"), 3600u);
    EXPECT_FALSE(parse_alarm_duration(""));
    EXPECT_FALSE(parse_alarm_duration("m"));
    EXPECT_FALSE(parse_alarm_duration("-5"));
    EXPECT_FALSE(parse_alarm_duration("5 m"));
    EXPECT_FALSE(parse_alarm_duration("99999999999999999999h"));
}

TEST(AlarmCommands, ListShowsEachTargetThatIsNotOk) {
    const json alarms = json::array(
        {{{"name", "busy"},
          {"metric", "vm.cpu"},
          {"vm", nullptr},
          {"above", 0.8},
          {"below", nullptr},
          {"for_seconds", 60},
          {"last_webhook_error", "POST http://x/: the receiver answered HTTP 500"},
          {"targets",
           json::array(
               {{{"target", "web"}, {"state", "firing"}, {"value", 0.97}, {"firing_since", "2026-12-06T23:00:00Z"}},
                {{"target", "db"}, {"state", "ok"}, {"value", 0.1}}})}}});
    const std::string text = render_alarm_view(View::AlarmTable, alarms);
    EXPECT_NE(text.find("NAME"), std::string::npos) << text;
    EXPECT_NE(text.find("above 0.8"), std::string::npos) << text;
    EXPECT_NE(text.find("web firing since 2026-12-06T23:00:00Z (0.97)"), std::string::npos) << text;
    EXPECT_EQ(text.find("db ok"), std::string::npos) << text;
    EXPECT_NE(text.find("answered HTTP 500"), std::string::npos) << text;
}

}  // namespace
}  // namespace corral::cli
