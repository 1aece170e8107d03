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
    // Every route index with a plain request, over both origins.
    for (uint8_t route = 0; route < 40; ++route) {
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
    seeds.push_back(request(0, true, "%ff", "tail=%ff", "Authorization: \xff\xfe\x80 x\n", "{\"a\":\"\\udc00\"}"));
    seeds.push_back(request(3, false, "..", "wait=-1", "X-Long: " + std::string(300, '\xc3') + "\n", "[]"));
    return seeds;
}

}  // namespace corral::fuzz
