#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace corral::net {

/// Runs an iproute2 program (`ip` or `tc`) with ARGS and fails with its own message when it
/// fails. For what the ioctls cannot do: bridge options (nf_call_iptables) and traffic control,
/// which would otherwise take netlink messages built by hand.
Result<void> run_iproute2(const std::string& program, const std::vector<std::string>& args);

}  // namespace corral::net
