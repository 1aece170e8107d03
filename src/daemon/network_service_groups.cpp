// NetworkService's security groups: stored in the inventory, applied with the firewall in the
// same call, undone when the firewall refuses them; and trace() over the installed ruleset.

#include <fmt/format.h>

#include "base/log.h"
#include "daemon/network_service.h"
#include "daemon/nic_plumbing.h"

namespace corral::daemon {

using inventory::SecurityGroupRecord;

Result<void> NetworkService::apply_or_undo(const std::function<void()>& undo) {
    // No network, no tables: groups are only stored until a network carries them (a corrald
    // without networks leaves the host's nftables alone).
    if (TRY(m_inventory.list_networks()).empty()) return {};
    auto applied = apply_firewall_locked();
    if (applied) return {};
    undo();
    if (auto again = apply_firewall_locked(); !again)
        log_error("re-applying the previous firewall: {}", again.error().describe());
    return fail(applied.error().with_context("applying the firewall"));
}

Result<SecurityGroupRecord> NetworkService::create_group(const SecurityGroupRecord& group) {
    std::lock_guard lock(m_mutex);
    auto stored = TRY(m_inventory.create_security_group(group));
    TRY_VOID(apply_or_undo([&] { (void)m_inventory.delete_security_group(group.name); }));
    return stored;
}

Result<SecurityGroupRecord> NetworkService::update_group(const SecurityGroupRecord& group) {
    std::lock_guard lock(m_mutex);
    const auto old = TRY(m_inventory.get_security_group(group.name));
    auto stored = TRY(m_inventory.update_security_group(group));
    TRY_VOID(apply_or_undo([&] { (void)m_inventory.update_security_group(old); }));
    return stored;
}

Result<void> NetworkService::remove_group(const std::string& name) {
    std::lock_guard lock(m_mutex);
    const auto old = TRY(m_inventory.get_security_group(name));
    TRY_VOID(m_inventory.delete_security_group(name));  // EBUSY while a NIC or a rule uses it
    return apply_or_undo([&] { (void)m_inventory.create_security_group(old); });
}

Result<inventory::VmRecord> NetworkService::set_nic_groups(const std::string& vm_name, size_t nic,
                                                            const std::vector<std::string>& groups) {
    std::lock_guard lock(m_mutex);
    const auto vm = TRY(m_inventory.get_vm(vm_name));
    if (nic >= vm.nics.size())
        return fail(fmt::format("VM {} has no NIC {} (it has {})", vm_name, nic, vm.nics.size()), ENOENT);
    const auto& ref = vm.nics[nic];
    if (!groups.empty() && (ref.network.empty() || ref.ipv4.empty()))
        return fail(fmt::format("groups: NIC {} of VM {} is {}; security groups filter NICs on a nat or isolated "
                                "network (they match by the address corrald gave the NIC)",
                                nic, vm_name,
                                ref.network.empty() ? "not on a managed network" : "without an address from corrald"),
                    EINVAL);
    const auto previous = ref.groups;
    auto stored = TRY(m_inventory.set_nic_groups(vm_name, nic, groups));
    TRY_VOID(apply_or_undo([&] { (void)m_inventory.set_nic_groups(vm_name, nic, previous); }));
    return stored;
}

Result<NetworkService::TraceAnswer> NetworkService::trace(const std::string& network_name, const std::string& from,
                                                          const std::string& to, net::firewall::Protocol protocol,
                                                          int port) {
    std::lock_guard lock(m_mutex);
    TRY(m_inventory.get_network(network_name));
    const auto model = TRY(firewall_model());
    // A VM name becomes the tap of its first NIC on the network; anything else is an address.
    auto endpoint = [&](const std::string& text, const char* field) -> Result<std::pair<std::string, std::string>> {
        auto vm = m_inventory.get_vm(text);
        if (!vm) {
            if (text.find_first_of(".:") == std::string::npos)
                return fail(fmt::format("{}: '{}' is neither a VM nor an address", field, text), ENOENT);
            return std::pair{text, text};
        }
        for (size_t i = 0; i < vm->nics.size(); ++i)
            if (vm->nics[i].network == network_name)
                return std::pair{NicPlumbing::tap_name_for(vm->name, i),
                                 vm->nics[i].ipv4.empty() ? fmt::format("VM {}", vm->name)
                                                          : fmt::format("VM {} ({})", vm->name, vm->nics[i].ipv4)};
        return fail(fmt::format("{}: VM {} has no NIC on network {}", field, text, network_name), EINVAL);
    };
    const auto [from_tap, from_words] = TRY(endpoint(from, "from"));
    const auto [to_tap, to_words] = TRY(endpoint(to, "to"));
    net::firewall::TraceQuery query{from_tap, to_tap, protocol, port};
    auto verdict = net::firewall::trace(model, query);
    if (!verdict) {
        // The firewall's own words name the field; a ruleset that is not installed is a 503.
        const Error& error = verdict.error();
        if (error.kind() == ErrorKind::Invalid) return fail(error);
        return fail(ErrorKind::Unavailable, "reading the installed ruleset: " + error.describe());
    }
    return TraceAnswer{*verdict, from_words, to_words};
}

}  // namespace corral::daemon
