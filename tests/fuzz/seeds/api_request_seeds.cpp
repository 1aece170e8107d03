// Seeds for api_request_fuzz: one valid request per route of the API (the route's index in
// add_all_routes order, found by its pattern), as the CLI sends them, plus hostile variants.
#include <string>

#include "../smoke_driver.h"

namespace corral::fuzz {
namespace {

Input request(uint8_t route, bool tls, const std::string& param, const std::string& query,
              const std::string& headers, const std::string& body) {
    Input input = {route, static_cast<uint8_t>(tls ? 1 : 0)};
    std::string text = param + "\n" + query + "\n" + headers + "\n" + body;
    input.insert(input.end(), text.begin(), text.end());
    return input;
}

}  // namespace

std::vector<Input> make_seeds() {
    const std::string json = "Content-Type: application/json\n";
    const std::string bearer = "Authorization: Bearer corral_good\n";
    std::vector<Input> seeds;
    // Every route index with a plain request, over both origins (the index wraps at the number
    // of routes, about 100 now: 128 covers them all with room to grow).
    for (uint8_t route = 0; route < 128; ++route) {
        seeds.push_back(request(route, false, "vm1", "", "", ""));
        seeds.push_back(request(route, true, "vol1", "wait=1&tail=5&volumes=false", bearer, "{}"));
    }
    // Bodies of the routes that read one; the route byte is mutated, so each meets them all.
    const char* bodies[] = {
        R"({"name":"vm1","vcpus":1,"memory_mib":128,"disks":[{"pool":"default","volume":"vol1","readonly":true}],)"
        R"("nics":[{"tap":"crltest0","mac":"52:54:00:12:34:56"}],"restart_policy":"no","cmdline":"quiet"})",
        R"({"vcpus":2,"memory_mib":256,"nics":[]})",
        R"({"action":"stop","timeout":5})",
        R"({"name":"p1","driver":"dir","path":"p1"})",
        R"({"pool":"default","name":"vol2","size":"1M","format":"raw"})",
        R"({"pool":"default","name":"vol3","from":{"pool":"default","volume":"vol1"},"linked":true})",
        R"({"size_bytes":2097152})",
        R"({"name":"img1","kernel":"k","initrd":"i","root":"r","cmdline":"c","description":"d"})",
        R"({"path":"x.qcow2","format":"qcow2"})",
        R"({"name":"t1"})",
        R"({"name":"a","name":"b","disks":[[[[{"x":1e300}]]]]})",
    };
    uint8_t route = 0;
    for (const char* body : bodies) {
        seeds.push_back(request(route++, false, "vm1", "", json, body));
        seeds.push_back(request(route++, true, "vm1", "", json + bearer, body));
    }
    // A valid body on the route that reads it (named by the pattern: route byte 255), so that
    // the mutations start from what gets past the first checks. The values are what
    // tests/integration/daemon/hostile_input.py sends; host paths are relative (the target
    // turns every '/' in a body into '_').
    const std::pair<const char*, const char*> named_bodies[] = {
        {"PUT /api/v1/vms/{name}/balloon", R"({"target_mib":64})"},
        {"POST /api/v1/vms/{name}/snapshots", R"({"name":"s1","description":"d","disk_only":false})"},
        {"POST /api/v1/vms/{name}/snapshots/{snapshot}/clone", R"({"name":"c1"})"},
        {"POST /api/v1/vms/{name}/migrate",
         R"({"to":"https:x","token":"corral_x","fingerprint":"ABAB","downtime_ms":300,"bandwidth_mib":8})"},
        {"POST /api/v1/migrations",
         R"({"name":"m1","vcpus":1,"memory_mib":128,"disks":[],"nics":[],"restart_policy":"no",)"
         R"("migration":{"origin":"h1","pools":[{"name":"default","identity":"00000000000000000000000000000000"}]}})"},
        {"POST /api/v1/migrations/{id}/finish", "{}"},
        {"PATCH /api/v1/host/capacity", R"({"vcpus_per_cpu":4,"memory_percent":90})"},
        {"POST /api/v1/host/capacity/plan",
         R"({"shape":{"vcpus":2,"memory_mib":2048},"what_if":[{"add":3,"vcpus":1,"memory_mib":512},{"remove":"vm1"}]})"},
        {"PUT /api/v1/vms/{name}/nics/{index}/groups", R"({"groups":["g0"]})"},
        {"POST /api/v1/session", R"({"token":"corral_x"})"},
        {"POST /api/v1/session/links", "{}"},
        {"POST /api/v1/backup-repositories", R"({"name":"r1","path":"r1","key":"r1.key","create":true})"},
        {"POST /api/v1/backups", R"({"vm":"vm1","repository":"r1"})"},
        {"POST /api/v1/backups/{backup}/restore", R"({"as":"restored"})"},
        {"POST /api/v1/backups/{backup}/verify", R"({"boot":true,"timeout_s":120,"ready":"up"})"},
        {"POST /api/v1/backup-repositories/{name}/prune",
         R"({"vm":"vm1","keep_last":2,"keep_daily":7,"keep_weekly":4,"keep_monthly":6,"dry_run":true})"},
        {"POST /api/v1/backup-repositories/{name}/gc", "{}"},
        {"POST /api/v1/backup-schedules",
         R"({"vm":"vm1","time":"02:00","day":"sunday","repository":"r1","keep_last":2,"verify_boot":true})"},
        {"POST /api/v1/backup-schedules/{id}/run", "{}"},
        {"POST /api/v1/alarms", R"({"name":"a1","metric":"vm.cpu","vm":"vm1","above":0.8,"for_seconds":60})"},
        {"POST /api/v1/alarms", R"({"name":"a2","metric":"host.memory","below":1048576.0})"},
        {"POST /api/v1/security-groups",
         R"({"name":"g1","rules":[{"direction":"in","protocol":"tcp","port_from":22,"port_to":22,"remote_cidr":"10.0.0.0_8"}]})"},
    };
    for (const auto& [route, body] : named_bodies) {
        seeds.push_back(request(255, false, std::string(route) + "\nvm1", "", json, body));
        seeds.push_back(request(255, true, std::string(route) + "\nvm1", "", json + bearer, body));
    }
    seeds.push_back(request(0, true, "%ff", "tail=%ff", "Authorization: \xff\xfe\x80 x\n", "{\"a\":\"\\udc00\"}"));
    seeds.push_back(request(3, false, "..", "wait=-1", "X-Long: " + std::string(300, '\xc3') + "\n", "[]"));
    return seeds;
}

}  // namespace corral::fuzz
