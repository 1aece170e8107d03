#pragma once

#include <string>

namespace corral::daemon {

/// The OpenAPI 3 document of the API (src/daemon/openapi.json, compiled in). A test checks
/// that it lists exactly the routes the daemon serves.
const std::string& openapi_document();

}  // namespace corral::daemon
