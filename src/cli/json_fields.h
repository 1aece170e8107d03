#pragma once
// Reading fields of a daemon answer for people, shared by the command groups' renderers
// (network, security group, backup, capacity plan). Missing fields never break the output.

#include <string>

#include <nlohmann/json.hpp>

namespace corral::cli {

/// A field as text: strings as they are, other values as JSON, absent or null as `-`.
std::string field_text(const nlohmann::json& object, const char* key);

/// The answer itself when it is an array (or its array `key`), else an empty array.
const nlohmann::json& items(const nlohmann::json& answer, const char* key = nullptr);

}  // namespace corral::cli
