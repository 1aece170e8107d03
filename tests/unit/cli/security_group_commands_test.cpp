#include "cli/security_group_commands.h"

#include <gtest/gtest.h>

#include "command_line_support.h"

#include "cli/render.h"

namespace corral::cli {
namespace {

using json = nlohmann::json;
using testing::parse;
using testing::request;

TEST(SecurityGroupCommands, EachVerbIsItsRequest) {
    EXPECT_EQ(parse({"security-group", "create", "web", "--description", "web servers"}).request,
              request("POST", "/api/v1/security-groups", json{{"name", "web"}, {"description", "web servers"}}));
    EXPECT_EQ(parse({"sg", "list"}).request, request("GET", "/api/v1/security-groups"));
    EXPECT_EQ(parse({"sg", "show", "web"}).request, request("GET", "/api/v1/security-groups/web"));
    EXPECT_EQ(parse({"sg", "delete", "web"}).request, request("DELETE", "/api/v1/security-groups/web"));
    EXPECT_EQ(parse({"sg", "rule-add", "web", "--protocol", "tcp", "--port", "8000-8100", "--remote", "10.0.0.0/8"}).request,
              request("POST", "/api/v1/security-groups/web/rules",
                      json{{"direction", "in"}, {"protocol", "tcp"}, {"port_from", 8000}, {"port_to", 8100},
                           {"remote_cidr", "10.0.0.0/8"}}));
    EXPECT_EQ(parse({"sg", "rule-add", "web", "--direction", "out", "--remote", "db"}).request,
              request("POST", "/api/v1/security-groups/web/rules",
                      json{{"direction", "out"}, {"protocol", "any"}, {"remote_group", "db"}}));
    EXPECT_EQ(parse({"sg", "rule-remove", "web", "2"}).request, request("DELETE", "/api/v1/security-groups/web/rules/2"));
    EXPECT_EQ(parse({"sg", "set-nic", "web1", "web", "ssh", "--nic", "1"}).request,
              request("PUT", "/api/v1/vms/web1/nics/1/groups", json{{"groups", {"web", "ssh"}}}));
    EXPECT_EQ(parse({"sg", "set-nic", "web1"}).request,
              request("PUT", "/api/v1/vms/web1/nics/0/groups", json{{"groups", json::array()}}));
}

TEST(SecurityGroupCommands, BadPortsAreUsageErrors) {
    EXPECT_EQ(parse_command_line({"sg", "rule-add", "web", "--port", "70000"}).exit_code, 2);
    EXPECT_EQ(parse_command_line({"sg", "rule-add", "web", "--port", "90-"}).exit_code, 2);
    EXPECT_EQ(parse_command_line({"sg", "rule-add", "web", "--protocol", "sctp"}).exit_code, 2);
    EXPECT_EQ(check_port_range("22"), "");
    EXPECT_EQ(check_port_range("1-65535"), "");
}

TEST(SecurityGroupCommands, NicGroupsAtCreation) {
    EXPECT_EQ(parse({"vm", "create", "web1", "--image", "default", "--nic", "network=default,groups=web+ssh"}).request,
              request("POST", "/api/v1/vms",
                      json{{"name", "web1"},
                           {"image", "default"},
                           {"nics", {{{"network", "default"}, {"groups", {"web", "ssh"}}}}}}));
}

TEST(SecurityGroupCommands, NetworkTrace) {
    EXPECT_EQ(parse({"network", "trace", "default", "--from", "web1", "--to", "web2", "--port", "22/tcp"}).request,
              request("GET", "/api/v1/networks/default/trace?from=web1&to=web2&protocol=tcp&port=22"));
    EXPECT_EQ(parse({"network", "trace", "default", "--from", "web1", "--to", "192.0.2.1", "--port", "icmp"}).request,
              request("GET", "/api/v1/networks/default/trace?from=web1&to=192.0.2.1&protocol=icmp"));
    EXPECT_EQ(parse({"network", "trace", "default", "--from", "a", "--to", "b", "--port", "53/udp"}).request,
              request("GET", "/api/v1/networks/default/trace?from=a&to=b&protocol=udp&port=53"));
    EXPECT_EQ(parse_command_line({"network", "trace", "default", "--from", "a", "--to", "b", "--port", "22/sctp"})
                  .exit_code,
              2);
    EXPECT_EQ(render(View::Trace, json{{"explanation", "tcp 22 from VM a to VM b is allowed by group ssh rule 0"}}),
              "tcp 22 from VM a to VM b is allowed by group ssh rule 0\n");
}

TEST(SecurityGroupCommands, GroupView) {
    json group = {{"name", "web"},
                  {"description", "web servers"},
                  {"vms", {"web1"}},
                  {"rules", {{{"index", 0}, {"summary", "in tcp 80 from anywhere"}}}}};
    const std::string text = render(View::SecurityGroup, group);
    EXPECT_NE(text.find("in tcp 80 from anywhere"), std::string::npos) << text;
    EXPECT_NE(text.find("web1"), std::string::npos) << text;
}

}  // namespace
}  // namespace corral::cli
