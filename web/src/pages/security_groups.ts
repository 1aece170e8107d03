// Security groups: each group with its rules (as `corral security-group show` words them) and the
// VMs whose NICs carry it; making a group, adding a rule (direction, protocol, ports, the other
// side as a CIDR or a group; the API's error at the field it names), removing a rule, deleting a
// group (one in use is a 409 naming the VMs, shown as the API says). Changes apply at once to
// running VMs (corrald rewrites the firewall in one transaction).
import { call, get, SecurityGroup } from "../api";
import { fill, h } from "../dom";
import { clearErrors, field, Field, showAtField } from "../form";

const groupPath = (name: string) => `/api/v1/security-groups/${encodeURIComponent(name)}`;

/** The add-a-rule form of one group. */
function ruleForm(group: SecurityGroup, status: HTMLElement, done: () => void): HTMLElement {
  const direction = field("direction", "Direction", h("select", {}, h("option", { value: "in" }, "in (to the VM)"),
    h("option", { value: "out" }, "out (from the VM)")));
  const protocol = field("protocol", "Protocol", h("select", {}, ["tcp", "udp", "icmp", "any"].map((value) =>
    h("option", { value }, value))));
  const from = field("port_from", "Port", h("input", { type: "number", min: 1, max: 65535, placeholder: "22" }),
    "tcp and udp: 1-65535; empty: every port.");
  const to = field("port_to", "To port", h("input", { type: "number", min: 1, max: 65535 }), "Empty: the same port.");
  const cidr = field("remote_cidr", "From/to address", h("input", { type: "text", spellcheck: "false", placeholder: "10.0.0.0/8" }),
    "An IPv4/IPv6 CIDR or address; empty: anyone (or the group below).");
  const remoteGroup = field("remote_group", "Or group", h("input", { type: "text", spellcheck: "false" }),
    "The NICs carrying that group.");
  const fields: Field[] = [direction, protocol, from, to, cidr, remoteGroup];
  const showPorts = () => (from.wrapper.hidden = to.wrapper.hidden = !["tcp", "udp"].includes(protocol.input.value));
  protocol.input.addEventListener("change", showPorts);
  showPorts();
  const form = h("form", { class: "rule-form", "aria-label": `Add a rule to ${group.name}` },
    h("div", { class: "fields-row" }, fields.map((each) => each.wrapper)), h("button", { type: "submit" }, "Add rule"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(fields);
    const rule: Record<string, unknown> = { direction: direction.input.value, protocol: protocol.input.value };
    if (!from.wrapper.hidden && from.input.value) rule.port_from = Number(from.input.value);
    if (!to.wrapper.hidden && to.input.value) rule.port_to = Number(to.input.value);
    if (cidr.input.value.trim()) rule.remote_cidr = cidr.input.value.trim();
    if (remoteGroup.input.value.trim()) rule.remote_group = remoteGroup.input.value.trim();
    try {
      const changed = await call<SecurityGroup>("POST", `${groupPath(group.name)}/rules`, rule);
      status.textContent = `${group.name}: rule added (${changed.rules[changed.rules.length - 1]?.summary ?? ""})`;
      done();
    } catch (error) {
      if (!showAtField(fields, error)) status.textContent = `${group.name}: ${(error as Error).message}`;
    }
  });
  return form;
}

export function securityGroupsPage(main: HTMLElement): () => void {
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const list = h("div", { class: "groups" });

  const name = field("name", "Name", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }),
    "Lowercase letters, digits and '-', starting with a letter.");
  const description = field("description", "Description", h("input", { type: "text", autocomplete: "off" }));
  const fields = [name, description];
  const form = h("form", { class: "card group-form", "aria-labelledby": "new-group-title" },
    h("h2", { id: "new-group-title" }, "New security group"), fields.map((each) => each.wrapper),
    h("p", { class: "help" }, "A group starts with no rules: a NIC carrying only it lets nothing in."),
    h("button", { type: "submit" }, "Create"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(fields);
    try {
      const made = await call<SecurityGroup>("POST", "/api/v1/security-groups",
        { name: name.input.value.trim(), description: description.input.value });
      status.textContent = `${made.name} created`;
      name.input.value = description.input.value = "";
      void refresh();
    } catch (error) {
      if (!showAtField(fields, error)) status.textContent = (error as Error).message;
    }
  });

  const removeRule = async (group: SecurityGroup, index: number, summary: string) => {
    try {
      await call("DELETE", `${groupPath(group.name)}/rules/${index}`);
      status.textContent = `${group.name}: rule '${summary}' removed`;
    } catch (error) {
      status.textContent = `${group.name}: ${(error as Error).message}`;
    }
    void refresh();
  };
  const removeGroup = async (group: SecurityGroup) => {
    if (!window.confirm(`Delete the security group ${group.name}?`)) return;
    try {
      await call("DELETE", groupPath(group.name));
      status.textContent = `${group.name} deleted`;
    } catch (error) {
      status.textContent = `delete ${group.name}: ${(error as Error).message}`;
    }
    void refresh();
  };

  const card = (group: SecurityGroup) => h("section", { class: "card wide", "data-group": group.name,
    "aria-labelledby": `group-${group.name}` },
    h("div", { class: "heading" }, h("h2", { id: `group-${group.name}` }, group.name),
      h("button", { type: "button", class: "danger", "data-action": "delete-group", onclick: () => void removeGroup(group) }, "Delete group")),
    group.description ? h("p", {}, group.description) : null,
    h("p", { class: "help" }, "On the NICs of: ", group.vms.length ? group.vms.flatMap((vm, i) =>
      [i ? ", " : "", h("a", { href: `#/vms/${encodeURIComponent(vm)}` }, vm)]) : "no VM yet (a VM's Network tab puts it on a NIC)"),
    h("div", { class: "table-wrap" }, h("table", { class: "list rules" }, h("caption", { class: "visually-hidden" }, `Rules of ${group.name}`),
      h("thead", {}, h("tr", {}, ["#", "Rule", "Actions"].map((title) => h("th", { scope: "col" }, title)))),
      h("tbody", {}, group.rules.length ? group.rules.map((rule) => h("tr", { "data-rule": rule.index },
        h("th", { scope: "row" }, rule.index),
        h("td", { "data-label": "Rule" }, h("code", {}, rule.summary)),
        h("td", { "data-label": "Actions" }, h("button", { type: "button", class: "secondary", "data-action": "delete-rule",
          "aria-label": `Remove rule ${rule.index} (${rule.summary})`, onclick: () => void removeRule(group, rule.index, rule.summary) }, "Remove"))))
        : h("tr", {}, h("td", { colspan: 3 }, "No rules: nothing gets in through this group."))))),
    ruleForm(group, status, () => void refresh()));

  fill(main, h("h1", {}, "Security groups"), status,
    h("p", { class: "help" }, "A NIC without groups passes everything; with groups, only what one of them allows gets in, plus replies. ",
      "Changes apply at once to running VMs."), list, h("div", { class: "grid" }, form));

  const refresh = async () => {
    const groups = await get<SecurityGroup[]>("/api/v1/security-groups");
    fill(list, groups.length ? groups.map(card) : h("p", {}, "No security groups."));
  };
  void refresh().catch((error) => (status.textContent = (error as Error).message));
  return () => {};
}
