#pragma once

#include <cstdint>
#include <string>

#include "base/result.h"

namespace corral::net {

/// Limits the traffic through tap `tap` to `bytes_per_second` in each direction, or removes the
/// limit (0), with Linux traffic control: what a monitor without rate limits of its own (QEMU)
/// gets. Host to guest is the tap's egress: a token bucket filter queues what exceeds the rate
/// (nothing dropped until its 100 ms queue is full). Guest to host is the tap's ingress, which
/// can only be policed: what exceeds is dropped (an nftables `limit` in corrald's netdev table
/// corral_rate, one chain per tap: tc's police action is not in every kernel), and the guest's
/// TCP slows down to the rate. Replaces whatever limit the tap had; idempotent. With 0 the tap
/// need not exist: the chain of a tap that is gone is removed too (the kernel keeps it, and
/// would hook it to the next device of that name).
Result<void> set_tap_rate_limit(const std::string& tap, uint64_t bytes_per_second);

}  // namespace corral::net
