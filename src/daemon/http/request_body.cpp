#include "daemon/http/request_body.h"

#include <fmt/format.h>

namespace corral::daemon {
namespace {

using nlohmann::json;

/// "a string", "a number", ... for messages about a value of the wrong type.
std::string kind_of(const json& value) {
    switch (value.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return "a boolean";
        case json::value_t::string: return "a string";
        case json::value_t::array: return "an array";
        case json::value_t::object: return "an object";
        case json::value_t::number_float: return "a number with a fraction or exponent";
        case json::value_t::number_integer:
            return value.get<int64_t>() < 0 ? "a negative number" : "a number";
        case json::value_t::number_unsigned: return "a number";
        default: return "an unexpected value";
    }
}

std::string join(const std::set<std::string>& names) {
    std::string out;
    for (const auto& name : names) out += (out.empty() ? "" : ", ") + name;
    return out.empty() ? "none" : out;
}

/// Builds the document like nlohmann's own DOM parser, but refuses what that one accepts
/// silently: a key given twice (it keeps the last, so a check may see one value and the
/// code another) and nesting deeper than the API ever needs. Errors name the path.
class StrictParser {
public:
    explicit StrictParser(size_t max_depth) : m_max_depth(max_depth) {}

    json& result() { return m_root; }
    const std::optional<ApiError>& error() const { return m_error; }

    bool null() { return add(json(nullptr)); }
    bool boolean(bool value) { return add(json(value)); }
    bool number_integer(json::number_integer_t value) { return add(json(value)); }
    bool number_unsigned(json::number_unsigned_t value) { return add(json(value)); }
    bool number_float(json::number_float_t value, const std::string&) { return add(json(value)); }
    bool string(std::string& value) { return add(json(std::move(value))); }
    bool binary(json::binary_t& value) { return add(json(std::move(value))); }
    bool start_object(size_t) { return open(json::object()); }
    bool start_array(size_t) { return open(json::array()); }
    bool end_object() { return close(); }
    bool end_array() { return close(); }
    bool key(std::string& name) {
        json* object = m_stack.back();
        if (object->contains(name)) {
            std::string field = here(name);
            return refuse(fmt::format("{} is given twice", field), field);
        }
        m_keys.back() = name;
        m_slot = &(*object)[name];
        return true;
    }
    bool parse_error(size_t position, const std::string&, const nlohmann::detail::exception& error) {
        m_error = ApiError{400, "", fmt::format("the request body is not valid JSON (at byte {}): {}", position,
                                                error.what())};
        return false;
    }

private:
    /// The path of the value being added in the innermost container (`key` there, if given).
    std::string here(const std::string& key = {}) const {
        std::string path;
        for (size_t i = 0; i < m_stack.size(); ++i) {
            const json* container = m_stack[i];
            const bool innermost = i + 1 == m_stack.size();
            if (container->is_object()) {
                const std::string& name = innermost && !key.empty() ? key : m_keys[i];
                if (i == 0 && path.empty()) path = name;
                else path += "." + name;
            } else {
                // Inner containers are their parent's last element; a new value goes at the end.
                size_t index = innermost ? container->size() : container->size() - 1;
                path += fmt::format("[{}]", index);
            }
        }
        return path;
    }
    bool refuse(std::string message, std::string field) {
        m_error = ApiError{400, std::move(field), std::move(message)};
        return false;
    }
    /// Puts `value` where the parser is; returns where it went.
    json* place(json value) {
        if (m_stack.empty()) {
            m_root = std::move(value);
            return &m_root;
        }
        json* parent = m_stack.back();
        if (parent->is_array()) {
            parent->push_back(std::move(value));
            return &parent->back();
        }
        *m_slot = std::move(value);
        return m_slot;
    }
    bool add(json value) {
        place(std::move(value));
        return true;
    }
    bool open(json container) {
        if (m_stack.size() >= m_max_depth) {
            std::string field = here();
            return refuse(fmt::format("the request body nests deeper than {} levels{}{}", m_max_depth,
                                      field.empty() ? "" : " at ", field),
                          field);
        }
        m_stack.push_back(place(std::move(container)));
        m_keys.emplace_back();
        return true;
    }
    bool close() {
        m_stack.pop_back();
        m_keys.pop_back();
        return true;
    }

    size_t m_max_depth;
    json m_root;
    std::vector<json*> m_stack;       // open containers, outermost first
    std::vector<std::string> m_keys;  // per open object: the key being read
    json* m_slot = nullptr;           // where the next object member goes
    std::optional<ApiError> m_error;
};

ApiError wrong_type(const std::string& field, const std::string& wanted, const json& value) {
    return ApiError{400, field, fmt::format("{} must be {}, not {}", field, wanted, kind_of(value))};
}

}  // namespace

std::string JsonReader::path_of(const std::string& field) const {
    return m_state->path.empty() ? field : m_state->path + "." + field;
}

bool JsonReader::has(const std::string& field) const {
    auto it = m_state->node->find(field);
    return it != m_state->node->end() && !it->is_null();
}

const nlohmann::json* JsonReader::value_of(const std::string& field) {
    m_state->read.insert(field);
    auto it = m_state->node->find(field);
    if (it == m_state->node->end() || it->is_null()) return nullptr;
    return &*it;
}

JsonReader JsonReader::child(const nlohmann::json& node, std::string path) {
    auto state = std::make_shared<State>();
    state->root = m_state->root;
    state->node = &node;
    state->path = std::move(path);
    m_state->children.push_back(state);
    return JsonReader(std::move(state));
}

ApiResult<std::string> JsonReader::required_string(const std::string& field) {
    auto value = TRY(optional_string(field));
    if (!value) return api_fail(400, fmt::format("{} is required (a string)", path_of(field)), path_of(field));
    return *value;
}

ApiResult<std::optional<std::string>> JsonReader::optional_string(const std::string& field) {
    const json* value = value_of(field);
    if (!value) return std::optional<std::string>();
    if (!value->is_string()) return std::unexpected(wrong_type(path_of(field), "a string", *value));
    const auto& text = value->get_ref<const std::string&>();
    if (text.find('\0') != std::string::npos)
        return api_fail(400, fmt::format("{} must not contain a NUL character", path_of(field)), path_of(field));
    return std::optional<std::string>(text);
}

ApiResult<std::optional<std::vector<std::string>>> JsonReader::optional_strings(const std::string& field,
                                                                                size_t max_items) {
    const json* value = value_of(field);
    if (!value) return std::optional<std::vector<std::string>>();
    const std::string path = path_of(field);
    if (!value->is_array()) return std::unexpected(wrong_type(path, "an array of strings", *value));
    if (value->size() > max_items)
        return api_fail(400, fmt::format("{} has {} items; at most {}", path, value->size(), max_items), path);
    std::vector<std::string> items;
    for (size_t i = 0; i < value->size(); ++i) {
        std::string item_path = fmt::format("{}[{}]", path, i);
        const json& item = (*value)[i];
        if (!item.is_string()) return std::unexpected(wrong_type(item_path, "a string", item));
        const auto& text = item.get_ref<const std::string&>();
        if (text.find('\0') != std::string::npos)
            return api_fail(400, fmt::format("{} must not contain a NUL character", item_path), item_path);
        items.push_back(text);
    }
    return std::optional<std::vector<std::string>>(std::move(items));
}

ApiResult<std::optional<uint64_t>> JsonReader::optional_uint(const std::string& field, uint64_t min, uint64_t max,
                                                             const std::string& unit) {
    const json* value = value_of(field);
    if (!value) return std::optional<uint64_t>();
    const std::string path = path_of(field);
    std::string range = fmt::format("from {} to {}{}{}", min, max, unit.empty() ? "" : " ", unit);
    // nlohmann keeps a non-negative integer as unsigned, a negative one as signed, and
    // anything with a fraction, an exponent or beyond 64 bits as a double.
    if (!value->is_number_unsigned())
        return std::unexpected(wrong_type(path, fmt::format("a whole number {}", range), *value));
    uint64_t number = value->get<uint64_t>();
    if (number < min || number > max)
        return api_fail(400, fmt::format("{} must be {} (got {})", path, range, number), path);
    return std::optional<uint64_t>(number);
}

ApiResult<std::optional<bool>> JsonReader::optional_bool(const std::string& field) {
    const json* value = value_of(field);
    if (!value) return std::optional<bool>();
    if (!value->is_boolean()) return std::unexpected(wrong_type(path_of(field), "true or false", *value));
    return std::optional<bool>(value->get<bool>());
}

ApiResult<std::optional<double>> JsonReader::optional_number(const std::string& field, const std::string& what) {
    const json* value = value_of(field);
    if (!value)
        return std::optional<double>();
    // nlohmann's parser never yields NaN or an infinity, but a number beyond a double's range
    // is refused by it too; any other number is taken.
    if (!value->is_number())
        return std::unexpected(wrong_type(path_of(field), fmt::format("a number ({})", what), *value));
    return std::optional<double>(value->get<double>());
}

ApiResult<std::optional<JsonReader>> JsonReader::optional_object(const std::string& field) {
    const json* value = value_of(field);
    if (!value) return std::optional<JsonReader>();
    if (!value->is_object()) return std::unexpected(wrong_type(path_of(field), "an object", *value));
    return std::optional<JsonReader>(child(*value, path_of(field)));
}

ApiResult<std::optional<std::vector<JsonReader>>> JsonReader::optional_objects(const std::string& field,
                                                                               size_t max_items) {
    const json* value = value_of(field);
    if (!value) return std::optional<std::vector<JsonReader>>();
    const std::string path = path_of(field);
    if (!value->is_array()) return std::unexpected(wrong_type(path, "an array of objects", *value));
    if (value->size() > max_items)
        return api_fail(400, fmt::format("{} has {} items; at most {}", path, value->size(), max_items), path);
    std::vector<JsonReader> items;
    for (size_t i = 0; i < value->size(); ++i) {
        std::string item_path = fmt::format("{}[{}]", path, i);
        if (!(*value)[i].is_object()) return std::unexpected(wrong_type(item_path, "an object", (*value)[i]));
        items.push_back(child((*value)[i], item_path));
    }
    return std::optional<std::vector<JsonReader>>(std::move(items));
}

ApiResult<void> JsonReader::finish() const {
    for (const auto& [key, value] : m_state->node->items()) {
        if (!m_state->read.contains(key)) {
            std::string field = path_of(key);
            return api_fail(400, fmt::format("unknown field {} (known fields{}: {})", field,
                                             m_state->path.empty() ? "" : " of " + m_state->path,
                                             join(m_state->read)),
                            field);
        }
    }
    for (const auto& state : m_state->children) TRY_VOID(JsonReader(state).finish());
    return {};
}

ApiResult<RequestBody> RequestBody::parse(const std::string& text) {
    auto state = std::make_shared<State>();
    if (text.find_first_not_of(" \t\r\n") == std::string::npos) {
        auto root = std::make_shared<json>(json::object());
        state->node = root.get();
        state->root = std::move(root);
        return RequestBody(std::move(state));
    }
    StrictParser parser(k_max_depth);
    // sax_parse does not throw on bad input: parse_error() is called and records it.
    const bool parsed = json::sax_parse(text, &parser);
    if (!parsed || parser.error()) {
        if (parser.error()) return std::unexpected(*parser.error());
        return api_fail(400, "the request body is not valid JSON");
    }
    if (!parser.result().is_object())
        return api_fail(400, fmt::format("the request body must be a JSON object, not {}", kind_of(parser.result())));
    auto root = std::make_shared<json>(std::move(parser.result()));
    state->node = root.get();
    state->root = std::move(root);
    return RequestBody(std::move(state));
}

ApiResult<std::optional<uint64_t>> query_uint(const HttpRequest& request, const std::string& name, uint64_t min,
                                              uint64_t max, const std::string& unit) {
    auto it = request.query.find(name);
    if (it == request.query.end()) return std::optional<uint64_t>();
    const std::string& text = it->second;
    std::string range = fmt::format("from {} to {}{}{}", min, max, unit.empty() ? "" : " ", unit);
    // Digits only, at most 19 of them (no overflow): strtoul would take " -1" and "12abc".
    bool digits = !text.empty() && text.size() <= 19 &&
                  text.find_first_not_of("0123456789") == std::string::npos;
    uint64_t number = 0;
    if (digits) {
        for (char c : text) number = number * 10 + static_cast<uint64_t>(c - '0');
    }
    if (!digits || number < min || number > max)
        return api_fail(400, fmt::format("{} must be a whole number {}, not '{}'", name, range, text.substr(0, 40)),
                        name);
    return std::optional<uint64_t>(number);
}

ApiResult<bool> query_bool(const HttpRequest& request, const std::string& name, bool fallback) {
    auto it = request.query.find(name);
    if (it == request.query.end()) return fallback;
    if (it->second == "true") return true;
    if (it->second == "false") return false;
    return api_fail(400, fmt::format("{} must be true or false, not '{}'", name, it->second.substr(0, 40)), name);
}

}  // namespace corral::daemon
