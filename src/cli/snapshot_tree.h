#pragma once
// The order and depth in which `vm snapshot list` shows a VM's snapshots as a tree.

#include <cstddef>
#include <vector>

#include <nlohmann/json.hpp>

namespace corral::cli {

/// A snapshot in tree order: `snapshot` points into the list given to snapshot_tree().
struct SnapshotTreeRow {
    const nlohmann::json* snapshot;
    std::size_t depth;  // 0 for a root
};

/// The API's snapshot list (oldest first, each with "name" and "parent") as a depth-first walk:
/// every root in list order, each followed by its children, oldest first. A snapshot whose
/// parent is not in the list (or that would close a cycle) is shown as a root, so none is lost.
std::vector<SnapshotTreeRow> snapshot_tree(const nlohmann::json& list);

}  // namespace corral::cli
