#include "cli/json_fields.h"

namespace corral::cli {

std::string field_text(const nlohmann::json& object, const char* key) {
    if (!object.is_object() || !object.contains(key) || object[key].is_null()) return "-";
    const auto& value = object[key];
    return value.is_string() ? value.get<std::string>() : value.dump();
}

const nlohmann::json& items(const nlohmann::json& answer, const char* key) {
    static const nlohmann::json empty = nlohmann::json::array();
    if (key) return answer.is_object() && answer.contains(key) && answer[key].is_array() ? answer[key] : empty;
    return answer.is_array() ? answer : empty;
}

}  // namespace corral::cli
