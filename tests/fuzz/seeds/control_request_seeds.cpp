// Seeds for control_request_fuzz: the requests corrald and the tests send.
#include <string_view>

#include "../smoke_driver.h"

namespace corral::fuzz {

namespace {

constexpr std::string_view k_lines[] = {
    R"({"action":"status"})",
    R"({"action":"snapshot","dir":"/srv/snap","resume":false})",
    R"({"action":"migrate","to":"unix:/run/m.sock","downtime_ms":300,"max_bandwidth_bytes":1048576})",
    R"({"action":"balloon","target_bytes":67108864})",
    R"({"action":"limits","disk_bytes_per_s":1048576,"disk_ops_per_s":100,"nic_bytes_per_s":0})",
    R"({"action":"disk_snapshot","tag":"corral-backup-1a2b3c4d","delete":true})",
    R"({"action":"disk_snapshot","tag":"b1","bitmap":{"name":"corral-gen-web-20261207","replaces":"corral-gen-"}})",
};

}  // namespace

std::vector<Input> make_seeds() {
    std::vector<Input> seeds;
    for (std::string_view line : k_lines)
        seeds.emplace_back(line.begin(), line.end());
    return seeds;
}

}  // namespace corral::fuzz
