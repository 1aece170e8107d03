#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "daemon/http/api_error.h"

namespace corral::daemon {

/// A JSON request body read field by field: every getter names the field in its error, and
/// finish() refuses fields nobody asked for, so a typo ("memroy_mib") is a 400, not ignored.
class RequestBody {
public:
    /// Parses `text` as a JSON object (an empty body is an empty object).
    static ApiResult<RequestBody> parse(const std::string& text);

    bool has(const std::string& field) const { return m_json.contains(field); }
    ApiResult<std::string> required_string(const std::string& field);
    ApiResult<std::optional<std::string>> optional_string(const std::string& field);
    /// A whole number in [min, max]; `unit` goes into the message ("MiB").
    ApiResult<std::optional<uint64_t>> optional_uint(const std::string& field, uint64_t min, uint64_t max,
                                                     const std::string& unit = "");
    ApiResult<std::optional<bool>> optional_bool(const std::string& field);
    /// The raw JSON of an array field (validated by the caller), or nullopt.
    ApiResult<std::optional<nlohmann::json>> optional_array(const std::string& field);
    ApiResult<std::optional<nlohmann::json>> optional_object(const std::string& field);
    /// 400 naming the first field that no getter read.
    ApiResult<void> finish() const;

private:
    explicit RequestBody(nlohmann::json json) : m_json(std::move(json)) {}
    nlohmann::json m_json;
    std::set<std::string> m_read;
};

/// Checks a fields of nested objects (disks[0]) the same way: unknown keys are a 400 naming
/// `prefix.key`.
ApiResult<void> reject_unknown_keys(const nlohmann::json& object, const std::set<std::string>& known,
                                    const std::string& prefix);

/// Parses "512M", "2G", "1048576", "10GiB" into bytes; nullopt when malformed or overflowing.
std::optional<uint64_t> parse_size(const std::string& text);

}  // namespace corral::daemon
