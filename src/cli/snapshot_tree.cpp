#include "cli/snapshot_tree.h"

#include <map>
#include <set>
#include <string>

namespace corral::cli {

namespace {

std::string field(const nlohmann::json& snapshot, const char* key) {
    auto it = snapshot.find(key);
    return it != snapshot.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::vector<SnapshotTreeRow> snapshot_tree(const nlohmann::json& list) {
    std::vector<SnapshotTreeRow> rows;
    if (!list.is_array()) return rows;
    std::map<std::string, const nlohmann::json*> by_name;
    for (const auto& snapshot : list) by_name.emplace(field(snapshot, "name"), &snapshot);
    std::map<std::string, std::vector<const nlohmann::json*>> children;
    std::vector<const nlohmann::json*> roots;
    for (const auto& snapshot : list) {
        const std::string parent = field(snapshot, "parent");
        if (parent.empty() || parent == field(snapshot, "name") || !by_name.contains(parent))
            roots.push_back(&snapshot);
        else
            children[parent].push_back(&snapshot);
    }
    std::set<const nlohmann::json*> shown;
    // Iterative depth-first walk; `shown` stops a cycle (which only a broken store could hold).
    auto walk = [&](const nlohmann::json* root) {
        std::vector<SnapshotTreeRow> stack{{root, 0}};
        while (!stack.empty()) {
            SnapshotTreeRow row = stack.back();
            stack.pop_back();
            if (!shown.insert(row.snapshot).second) continue;
            rows.push_back(row);
            const auto& kids = children[field(*row.snapshot, "name")];
            for (auto it = kids.rbegin(); it != kids.rend(); ++it) stack.push_back({*it, row.depth + 1});
        }
    };
    for (const auto* root : roots) walk(root);
    // Whatever a cycle kept from every root is shown flat at the end.
    for (const auto& snapshot : list)
        if (!shown.contains(&snapshot)) walk(&snapshot);
    return rows;
}

}  // namespace corral::cli
