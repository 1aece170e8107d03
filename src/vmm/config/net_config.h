#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "base/result.h"

namespace corral::vmm {

using MacAddress = std::array<uint8_t, 6>;

/// A rate limit on one direction of a NIC (0: unlimited): frame bytes (without the virtio-net
/// header) and frames per second, each a token bucket holding one second's worth.
struct NetRateLimit {
    uint64_t bytes_per_second = 0;
    uint64_t packets_per_second = 0;

    bool limited() const { return bytes_per_second != 0 || packets_per_second != 0; }
    bool operator==(const NetRateLimit&) const = default;
};

/// One virtio-net NIC: its backend (a named tap, or a tap fd inherited from the parent), the
/// guest's MAC address and its rate limits. Plain values; the tap is opened when the VM is built.
struct NetConfig {
    std::optional<std::string> tap;  // exactly one of tap and fd is set
    std::optional<int> fd;
    MacAddress mac{};
    NetRateLimit rx;  // host -> guest
    NetRateLimit tx;  // guest -> host

    bool operator==(const NetConfig&) const = default;
};

/// Parses "52:54:00:12:34:56" (hex pairs separated by ':'); must be a unicast address.
/// `what` names the option in errors.
Result<MacAddress> parse_mac(std::string_view text, std::string_view what);
std::string format_mac(const MacAddress& mac);
/// The MAC a NIC gets when none is given: 52:54:00 (the locally administered prefix QEMU and
/// libvirt use) followed by three bytes of a hash of the backend and the NIC's index, so the
/// same command line always gives the same address.
MacAddress default_mac(const NetConfig& config, size_t index);

/// Parses one `--net` value: "tap=NAME[,mac=MAC]" or "fd=N[,mac=MAC]", then optional rate
/// limits: bps=N and pps=N limit each direction, rx_bps/rx_pps (host to guest) and
/// tx_bps/tx_pps (guest to host) one of them and take precedence. `index` is the NIC's
/// position (for the default MAC). Errors name --net and the bad key or value.
Result<NetConfig> parse_net_option(std::string_view text, size_t index);
/// One entry of the JSON "nets" array: {"tap": NAME} or {"fd": N}, with optional "mac" and the
/// rate limit keys of --net ("bps", "pps", "rx_bps", ...) as whole numbers.
Result<NetConfig> net_config_from_json(const nlohmann::json& entry, size_t index);
nlohmann::json net_config_to_json(const NetConfig& config);

}  // namespace corral::vmm
