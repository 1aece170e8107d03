#pragma once

#include <chrono>
#include <filesystem>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace corral::engine {

/// The file name of corral-vmm's control socket in a VM's run_dir (`--control RUN/control.sock`).
inline constexpr const char* k_vmm_control_socket = "control.sock";
/// The file name of corral-vmm's RFB (VNC) socket in a VM with a display (`--vnc unix:RUN/vnc.sock`).
inline constexpr const char* k_vmm_vnc_socket = "vnc.sock";

/// Sends `{"action":action}` to corral-vmm's control socket (one connection per call) and
/// returns the answer when it says ok:true. Errors: the socket does not answer (its errno,
/// e.g. ENOENT/ECONNREFUSED), ETIMEDOUT when no answer came within `timeout`, ENOTSUP when the
/// monitor says "not supported", EBUSY for another refusal (its message), EPROTO for an
/// unreadable answer.
Result<nlohmann::json> vmm_control_request(const std::filesystem::path& socket, const std::string& action,
                                           std::chrono::milliseconds timeout);
/// The same with a whole request object (`{"action":"snapshot","dir":...}`); errors name its action.
Result<nlohmann::json> vmm_control_send(const std::filesystem::path& socket, const nlohmann::json& request,
                                           std::chrono::milliseconds timeout);

/// Standard base64 (RFC 4648, padded or not; no whitespace) as bytes, as corral-vmm's answers
/// carry binary data (a screenshot's PNG, a disk's bitmap); `what` names it in errors (EPROTO).
Result<std::string> decode_base64(const std::string& text, std::string_view what);

}  // namespace corral::engine
