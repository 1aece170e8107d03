#include "daemon/network/nic_ipv6.h"

#include "net/ipv6.h"

namespace corral::daemon {

std::string nic_ipv6_address(const std::string& subnet6, const std::string& mac) {
    auto subnet = net::parse_ipv6_subnet(subnet6);
    if (!subnet) return "";
    auto address = net::slaac_address(*subnet, mac);
    return address ? net::format_ipv6(*address) : "";
}

std::map<std::string, std::string> subnet6_by_network(inventory::Inventory& inventory) {
    std::map<std::string, std::string> out;
    if (auto networks = inventory.list_networks())
        for (const auto& network : *networks)
            if (!network.subnet6.empty()) out[network.name] = network.subnet6;
    return out;
}

}  // namespace corral::daemon
