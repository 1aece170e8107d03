#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "daemon/http/api_error.h"
#include "daemon/http/router.h"

namespace corral::daemon {

/// One JSON object of a request read field by field, with typed getters only: every error is
/// a 400 naming the field's path ("disks[0].pool") and what is allowed, never an exception.
/// Nested objects and array elements are read through child readers with the same getters.
/// A JSON null is treated as an absent field. finish() refuses fields nobody asked for (here
/// and in every child), so a typo ("memroy_mib") is a 400, not ignored.
class JsonReader {
public:
    /// The path of `field` in this object: "pool", or "disks[0].pool" in a child.
    std::string path_of(const std::string& field) const;
    /// This object's own path ("" for the body itself).
    const std::string& path() const { return m_state->path; }

    bool has(const std::string& field) const;
    ApiResult<std::string> required_string(const std::string& field);
    /// A string; a NUL inside is refused (it would cut a path or name short in C APIs).
    ApiResult<std::optional<std::string>> optional_string(const std::string& field);
    /// An array of strings (NUL refused in each), at most `max_items`.
    ApiResult<std::optional<std::vector<std::string>>> optional_strings(const std::string& field, size_t max_items);
    /// A whole number in [min, max]; `unit` goes into the message ("MiB"). Negative numbers,
    /// fractions and numbers beyond 64 bits are refused like any other wrong type.
    ApiResult<std::optional<uint64_t>> optional_uint(const std::string& field, uint64_t min, uint64_t max,
                                                     const std::string& unit = "");
    ApiResult<std::optional<bool>> optional_bool(const std::string& field);
    /// Any finite number (negative, with a fraction or an exponent); `what` says in the message
    /// what it is for ("a threshold").
    ApiResult<std::optional<double>> optional_number(const std::string& field, const std::string& what);
    /// A nested object, read with the same getters (paths "field.key").
    ApiResult<std::optional<JsonReader>> optional_object(const std::string& field);
    /// An array of objects, one reader per element (paths "field[i].key"); at most `max_items`.
    ApiResult<std::optional<std::vector<JsonReader>>> optional_objects(const std::string& field, size_t max_items);
    /// 400 naming the first field that no getter read, in this object or in a child reader.
    ApiResult<void> finish() const;

protected:
    struct State {
        std::shared_ptr<const nlohmann::json> root;  // keeps `node` alive
        const nlohmann::json* node = nullptr;
        std::string path;
        std::set<std::string> read;
        std::vector<std::shared_ptr<State>> children;
    };
    explicit JsonReader(std::shared_ptr<State> state) : m_state(std::move(state)) {}
    /// The field's value, or nullptr when absent or null; marks it read.
    const nlohmann::json* value_of(const std::string& field);
    JsonReader child(const nlohmann::json& node, std::string path);

    std::shared_ptr<State> m_state;
};

/// A request body: a JSON object, parsed strictly (a duplicate key or nesting deeper than
/// k_max_depth is a 400 naming where, as invalid JSON is), then read as a JsonReader.
class RequestBody : public JsonReader {
public:
    static constexpr size_t k_max_depth = 32;
    /// Parses `text` as a JSON object (an empty body is an empty object).
    static ApiResult<RequestBody> parse(const std::string& text);

private:
    using JsonReader::JsonReader;
};

/// A query parameter as a whole number in [min, max]: decimal digits only (no sign, no
/// spaces, no fractions), else a 400 naming the parameter. nullopt when absent.
ApiResult<std::optional<uint64_t>> query_uint(const HttpRequest& request, const std::string& name, uint64_t min,
                                              uint64_t max, const std::string& unit = "");
/// A query parameter that is "true" or "false"; `fallback` when absent.
ApiResult<bool> query_bool(const HttpRequest& request, const std::string& name, bool fallback);
}  // namespace corral::daemon
