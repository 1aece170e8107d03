#include "daemon/http/request_body.h"

#include <fmt/format.h>

namespace corral::daemon {

ApiResult<RequestBody> RequestBody::parse(const std::string& text) {
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) return RequestBody(nlohmann::json::object());
    auto json = nlohmann::json::parse(text, nullptr, false);
    if (json.is_discarded()) return api_fail(400, "the request body is not valid JSON");
    if (!json.is_object()) return api_fail(400, "the request body must be a JSON object");
    return RequestBody(std::move(json));
}

ApiResult<std::string> RequestBody::required_string(const std::string& field) {
    auto value = TRY(optional_string(field));
    if (!value) return api_fail(400, fmt::format("{} is required", field), field);
    return *value;
}

ApiResult<std::optional<std::string>> RequestBody::optional_string(const std::string& field) {
    m_read.insert(field);
    if (!m_json.contains(field) || m_json[field].is_null()) return std::optional<std::string>();
    if (!m_json[field].is_string()) return api_fail(400, fmt::format("{} must be a string", field), field);
    return std::optional<std::string>(m_json[field].get<std::string>());
}

ApiResult<std::optional<uint64_t>> RequestBody::optional_uint(const std::string& field, uint64_t min, uint64_t max,
                                                              const std::string& unit) {
    m_read.insert(field);
    if (!m_json.contains(field) || m_json[field].is_null()) return std::optional<uint64_t>();
    const auto& value = m_json[field];
    std::string range = fmt::format("from {} to {}{}{}", min, max, unit.empty() ? "" : " ", unit);
    if (!value.is_number_integer() || (value.is_number_integer() && !value.is_number_unsigned() && value.get<int64_t>() < 0))
        return api_fail(400, fmt::format("{} must be a whole number {}", field, range), field);
    uint64_t number = value.get<uint64_t>();
    if (number < min || number > max)
        return api_fail(400, fmt::format("{} must be {} (got {})", field, range, number), field);
    return std::optional<uint64_t>(number);
}

ApiResult<std::optional<bool>> RequestBody::optional_bool(const std::string& field) {
    m_read.insert(field);
    if (!m_json.contains(field) || m_json[field].is_null()) return std::optional<bool>();
    if (!m_json[field].is_boolean()) return api_fail(400, fmt::format("{} must be true or false", field), field);
    return std::optional<bool>(m_json[field].get<bool>());
}

ApiResult<std::optional<nlohmann::json>> RequestBody::optional_array(const std::string& field) {
    m_read.insert(field);
    if (!m_json.contains(field) || m_json[field].is_null()) return std::optional<nlohmann::json>();
    if (!m_json[field].is_array()) return api_fail(400, fmt::format("{} must be an array", field), field);
    return std::optional<nlohmann::json>(m_json[field]);
}

ApiResult<std::optional<nlohmann::json>> RequestBody::optional_object(const std::string& field) {
    m_read.insert(field);
    if (!m_json.contains(field) || m_json[field].is_null()) return std::optional<nlohmann::json>();
    if (!m_json[field].is_object()) return api_fail(400, fmt::format("{} must be an object", field), field);
    return std::optional<nlohmann::json>(m_json[field]);
}

ApiResult<void> RequestBody::finish() const {
    for (const auto& [key, value] : m_json.items()) {
        if (!m_read.contains(key)) {
            std::string known;
            for (const auto& name : m_read) known += (known.empty() ? "" : ", ") + name;
            return api_fail(400, fmt::format("unknown field {} (known fields: {})", key, known), key);
        }
    }
    return {};
}

ApiResult<void> reject_unknown_keys(const nlohmann::json& object, const std::set<std::string>& known,
                                    const std::string& prefix) {
    if (!object.is_object()) return api_fail(400, fmt::format("{} must be an object", prefix), prefix);
    for (const auto& [key, value] : object.items()) {
        if (!known.contains(key)) {
            std::string allowed;
            for (const auto& name : known) allowed += (allowed.empty() ? "" : ", ") + name;
            return api_fail(400, fmt::format("unknown field {}.{} (known: {})", prefix, key, allowed),
                            prefix + "." + key);
        }
    }
    return {};
}

std::optional<uint64_t> parse_size(const std::string& text) {
    if (text.empty() || text[0] < '0' || text[0] > '9') return std::nullopt;
    size_t pos = 0;
    uint64_t number = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
        if (number > (UINT64_MAX - 9) / 10) return std::nullopt;
        number = number * 10 + static_cast<uint64_t>(text[pos] - '0');
        ++pos;
    }
    std::string suffix = text.substr(pos);
    if (suffix.size() == 3 && suffix.substr(1) == "iB") suffix = suffix.substr(0, 1);
    if (suffix.size() == 2 && suffix[1] == 'B' && suffix[0] != 'B') suffix = suffix.substr(0, 1);
    unsigned shift = 0;
    if (suffix.empty() || suffix == "B") shift = 0;
    else if (suffix == "K" || suffix == "k") shift = 10;
    else if (suffix == "M") shift = 20;
    else if (suffix == "G") shift = 30;
    else if (suffix == "T") shift = 40;
    else return std::nullopt;
    if (shift && number > (UINT64_MAX >> shift)) return std::nullopt;
    return number << shift;
}

}  // namespace corral::daemon
