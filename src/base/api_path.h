#pragma once

#include <string>
#include <string_view>

namespace corral {

/// The REST API's path prefix (docs/api.md): every route corrald serves under it and every
/// path the CLI asks for start with it. The next API version changes it here.
inline constexpr std::string_view k_api_prefix = "/api/v1";

/// k_api_prefix followed by `rest` ("/vms/web1" -> "/api/v1/vms/web1").
inline std::string api_path(std::string_view rest) { return std::string(k_api_prefix).append(rest); }

}  // namespace corral
