// SqliteInventory's security groups and the groups of each NIC (schema v6).

#include <fmt/format.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "daemon/inventory/sqlite_inventory.h"

namespace corral::inventory {

namespace {

using nlohmann::json;

std::string rules_to_json(const std::vector<SecurityRuleRecord>& rules) {
    json array = json::array();
    for (const auto& rule : rules)
        array.push_back({{"direction", rule.direction},
                         {"protocol", rule.protocol},
                         {"port_from", rule.port_from},
                         {"port_to", rule.port_to},
                         {"remote_cidr", rule.remote_cidr},
                         {"remote_group", rule.remote_group}});
    return array.dump();
}

Result<std::vector<SecurityRuleRecord>> rules_from_json(const std::string& group, const std::string& text) {
    auto malformed = [&] {
        return fail(fmt::format("inventory: security group {} has a malformed rules column: {}", group, text));
    };
    const json array = json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (array.is_discarded() || !array.is_array()) return malformed();
    std::vector<SecurityRuleRecord> rules;
    try {
        for (const auto& e : array) {
            if (!e.is_object()) return malformed();
            rules.push_back(SecurityRuleRecord{e.value("direction", "in"), e.value("protocol", "any"),
                                               e.value("port_from", 0), e.value("port_to", 0),
                                               e.value("remote_cidr", ""), e.value("remote_group", "")});
        }
    } catch (const json::exception&) {  // a key with the wrong type
        return malformed();
    }
    return rules;
}

}  // namespace

Result<void> SqliteInventory::load_nic_groups(VmRecord& vm) {
    for (auto& nic : vm.nics) nic.groups.clear();
    Statement select =
        TRY(m_db.prepare("SELECT nic, group_name FROM nic_groups WHERE vm = ?1 ORDER BY nic, position"));
    TRY_VOID(select.bind_all(vm.name));
    while (TRY(select.step())) {
        const auto nic = select.column_int64(0);
        if (nic >= 0 && static_cast<std::size_t>(nic) < vm.nics.size())
            vm.nics[static_cast<std::size_t>(nic)].groups.push_back(select.column_text(1));
    }
    return {};
}

Result<void> SqliteInventory::store_nic_groups(const std::string& vm, std::size_t nic,
                                               const std::vector<std::string>& groups) {
    const auto index = static_cast<std::int64_t>(nic);
    Statement remove = TRY(m_db.prepare("DELETE FROM nic_groups WHERE vm = ?1 AND nic = ?2"));
    TRY_VOID(remove.bind_all(vm, index));
    TRY_VOID(remove.run());
    for (std::size_t position = 0; position < groups.size(); ++position) {
        Statement insert = TRY(m_db.prepare(
            "INSERT INTO nic_groups (vm, nic, position, group_name) VALUES (?1, ?2, ?3, ?4)"));
        TRY_VOID(insert.bind_all(vm, index, static_cast<std::int64_t>(position), groups[position]));
        if (auto ran = insert.run(); !ran) {
            const std::string field = fmt::format("nics[{}].groups[{}]", nic, position);
            if (insert.failed_on_foreign_key())
                return fail(fmt::format("{}: no security group named {}", field, groups[position]), ENOENT);
            if (insert.failed_on_unique())
                return fail(fmt::format("{}: group {} is given twice", field, groups[position]), EINVAL);
            return ran;
        }
    }
    return {};
}

Result<SecurityGroupRecord> SqliteInventory::create_security_group(const SecurityGroupRecord& group) {
    std::lock_guard lock(m_mutex);
    SecurityGroupRecord stored = group;
    stored.created_at = now();
    Statement insert = TRY(m_db.prepare(
        "INSERT INTO security_groups (name, description, rules, created_at) VALUES (?1, ?2, ?3, ?4)"));
    TRY_VOID(insert.bind_all(stored.name, stored.description, rules_to_json(stored.rules), stored.created_at));
    if (auto ran = insert.run(); !ran) {
        if (insert.failed_on_unique())
            return fail(fmt::format("a security group named {} already exists", group.name), EEXIST);
        return fail(ran.error().with_context(fmt::format("storing security group {}", group.name)));
    }
    return stored;
}

Result<SecurityGroupRecord> SqliteInventory::get_security_group(const std::string& name) {
    std::lock_guard lock(m_mutex);
    Statement select = TRY(
        m_db.prepare("SELECT name, description, rules, created_at FROM security_groups WHERE name = ?1"));
    TRY_VOID(select.bind_all(name));
    if (!TRY(select.step())) return fail(fmt::format("no security group named {}", name), ENOENT);
    return SecurityGroupRecord{select.column_text(0), select.column_text(1),
                               TRY(rules_from_json(name, select.column_text(2))), select.column_text(3)};
}

Result<std::vector<SecurityGroupRecord>> SqliteInventory::list_security_groups() {
    std::lock_guard lock(m_mutex);
    Statement select =
        TRY(m_db.prepare("SELECT name, description, rules, created_at FROM security_groups ORDER BY name"));
    std::vector<SecurityGroupRecord> groups;
    while (TRY(select.step())) {
        const std::string name = select.column_text(0);
        groups.push_back(SecurityGroupRecord{name, select.column_text(1),
                                             TRY(rules_from_json(name, select.column_text(2))),
                                             select.column_text(3)});
    }
    return groups;
}

Result<SecurityGroupRecord> SqliteInventory::update_security_group(const SecurityGroupRecord& group) {
    std::lock_guard lock(m_mutex);
    SecurityGroupRecord stored = group;
    Statement update = TRY(m_db.prepare("UPDATE security_groups SET description = ?2, rules = ?3 WHERE name = ?1 "
                                        "RETURNING created_at"));
    TRY_VOID(update.bind_all(stored.name, stored.description, rules_to_json(stored.rules)));
    if (!TRY(update.step())) return fail(fmt::format("no security group named {}", group.name), ENOENT);
    stored.created_at = update.column_text(0);
    TRY_VOID(update.run());
    return stored;
}

Result<void> SqliteInventory::delete_security_group(const std::string& name) {
    std::lock_guard lock(m_mutex);
    return in_transaction([&]() -> Result<void> {
        const auto users = TRY(vms_using_security_group(name));
        if (!users.empty()) {
            std::string list;
            for (const auto& user : users) list += (list.empty() ? "" : ", ") + user;
            return fail(fmt::format("security group {} is attached to a NIC of VM{} {}: detach it first", name,
                                    users.size() == 1 ? "" : "s", list),
                        EBUSY);
        }
        for (const auto& other : TRY(list_security_groups())) {
            if (other.name == name) continue;
            for (std::size_t i = 0; i < other.rules.size(); ++i)
                if (other.rules[i].remote_group == name)
                    return fail(fmt::format("security group {} is named by rule {} of group {}: remove that rule first",
                                            name, i, other.name),
                                EBUSY);
        }
        Statement remove = TRY(m_db.prepare("DELETE FROM security_groups WHERE name = ?1"));
        TRY_VOID(remove.bind_all(name));
        TRY_VOID(remove.run());
        if (m_db.changes() == 0) return fail(fmt::format("no security group named {}", name), ENOENT);
        return {};
    });
}

Result<std::vector<std::string>> SqliteInventory::vms_using_security_group(const std::string& name) {
    std::lock_guard lock(m_mutex);
    Statement select =
        TRY(m_db.prepare("SELECT DISTINCT vm FROM nic_groups WHERE group_name = ?1 ORDER BY vm"));
    TRY_VOID(select.bind_all(name));
    std::vector<std::string> names;
    while (TRY(select.step())) names.push_back(select.column_text(0));
    return names;
}

Result<VmRecord> SqliteInventory::set_nic_groups(const std::string& vm, std::size_t nic,
                                                 const std::vector<std::string>& groups) {
    std::lock_guard lock(m_mutex);
    VmRecord stored;
    TRY_VOID(in_transaction([&]() -> Result<void> {
        stored = TRY(get_vm(vm));
        if (nic >= stored.nics.size())
            return fail(fmt::format("VM {} has no NIC {} (it has {})", vm, nic, stored.nics.size()), EINVAL);
        TRY_VOID(store_nic_groups(vm, nic, groups));
        return load_nic_groups(stored);
    }));
    return stored;
}

}  // namespace corral::inventory
