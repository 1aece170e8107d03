// The OpenAPI document must list exactly the routes corrald serves, with the same methods.
#include "daemon/openapi.h"

#include <unistd.h>

#include <filesystem>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "daemon/api/api_context.h"
#include "daemon/inventory/sqlite_inventory.h"

namespace corral::daemon {
namespace {

TEST(OpenApiTest, DocumentListsExactlyTheServedRoutes) {
    auto dir = std::filesystem::temp_directory_path() / ("openapi-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto inventory = inventory::SqliteInventory::open((dir / "inventory.db").string());
    ASSERT_TRUE(inventory);
    EventBus events;
    TaskManager tasks(**inventory, events);
    StorageService storage(**inventory, dir);
    ImageService images(**inventory, storage, dir, "guest-image");
    VmManager vms(**inventory, storage, tasks, events, {}, "emulated", dir / "run");
    HostAccess host_access;
    ApiContext context{**inventory, storage, tasks, events, vms, images, HostFacts{}, host_access};
    Router router;
    add_all_routes(router, context);

    std::set<std::string> served;
    for (const auto& [method, pattern] : router.routes()) {
        std::string verb = method == "WEBSOCKET" ? "get" : method;
        for (auto& c : verb) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        served.insert(verb + " " + pattern);
    }
    auto document = nlohmann::json::parse(openapi_document());
    std::set<std::string> documented;
    for (const auto& [path, methods] : document["paths"].items()) {
        for (const auto& [method, operation] : methods.items()) documented.insert(method + " " + path);
    }
    for (const auto& route : served) EXPECT_TRUE(documented.contains(route)) << route << " is served but not documented";
    for (const auto& route : documented) EXPECT_TRUE(served.contains(route)) << route << " is documented but not served";
    std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace corral::daemon
