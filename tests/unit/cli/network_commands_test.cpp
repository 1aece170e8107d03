#include "cli/network_commands.h"

#include <gtest/gtest.h>

#include "command_line_support.h"

#include "cli/render.h"

namespace corral::cli {
namespace {

using json = nlohmann::json;
using testing::parse;
using testing::request;

TEST(NetworkCommands, CreateWithEveryFlag) {
    const Invocation inv = parse({"network", "create", "lab", "--kind", "isolated", "--subnet", "10.0.101.0/24",
                                  "--gateway", "10.0.101.1", "--dhcp-range", "10.0.101.100-10.0.101.150", "--mtu",
                                  "1400", "--dns", "192.0.2.53", "--reserve", "52:54:00:00:00:05=10.0.101.5=db",
                                  "--reserve", "52:54:00:00:00:06=10.0.101.6"});
    EXPECT_EQ(inv.view, View::Network);
    EXPECT_EQ(inv.request,
              request("POST", "/api/v1/networks",
                      json{{"name", "lab"},
                           {"kind", "isolated"},
                           {"subnet4", "10.0.101.0/24"},
                           {"gateway4", "10.0.101.1"},
                           {"dhcp_start", "10.0.101.100"},
                           {"dhcp_end", "10.0.101.150"},
                           {"mtu", 1400},
                           {"dns_forwarders", {"192.0.2.53"}},
                           {"reservations",
                            {{{"mac", "52:54:00:00:00:05"}, {"ipv4", "10.0.101.5"}, {"hostname", "db"}},
                             {{"mac", "52:54:00:00:00:06"}, {"ipv4", "10.0.101.6"}}}}}));
}

TEST(NetworkCommands, ListShowEditDeleteLeases) {
    EXPECT_EQ(parse({"network", "list"}).request, request("GET", "/api/v1/networks"));
    EXPECT_EQ(parse({"network", "show", "lab"}).request, request("GET", "/api/v1/networks/lab"));
    EXPECT_EQ(parse({"network", "edit", "lab", "--mtu", "9000", "--no-reservations"}).request,
              request("PATCH", "/api/v1/networks/lab", json{{"mtu", 9000}, {"reservations", json::array()}}));
    EXPECT_EQ(parse({"network", "delete", "lab"}).request, request("DELETE", "/api/v1/networks/lab"));
    EXPECT_EQ(parse({"network", "leases", "lab"}).request, request("GET", "/api/v1/networks/lab/leases"));
    EXPECT_FALSE(parse_command_line({"network", "create", "lab", "--reserve", "nonsense"}).invocation);
}

TEST(NetworkCommands, VmNicOnANetworkOrNone) {
    EXPECT_EQ(parse({"vm", "create", "web1", "--image", "default", "--nic", "network=lab"}).request,
              request("POST", "/api/v1/vms",
                      json{{"name", "web1"}, {"image", "default"}, {"nics", {{{"network", "lab"}}}}}));
    EXPECT_EQ(parse({"vm", "create", "web1", "--image", "default", "--nic", "none"}).request,
              request("POST", "/api/v1/vms", json{{"name", "web1"}, {"image", "default"}, {"nics", json::array()}}));
}

TEST(NetworkCommands, LeaseTable) {
    json leases = json::array({{{"ipv4", "10.0.100.2"}, {"mac", "52:54:00:00:00:02"}, {"hostname", "web1"},
                                {"expires", 1796534603}}});
    EXPECT_EQ(render(View::LeaseTable, leases),
              "IPV4        MAC                HOSTNAME  EXPIRES\n"
              "10.0.100.2  52:54:00:00:00:02  web1      1796534603\n");
}

}  // namespace
}  // namespace corral::cli
