// Networks: the managed networks (kind, IPv4 and IPv6 subnets, bridge, the VMs on them, problems), making one
// (errors at the field the API names: a bad or overlapping subnet, a gateway outside it...), a
// network's DHCP leases, editing one (network_edit.ts: its addresses, DHCP range, IPv6 subnet,
// MTU, DNS forwarders and reservations), and deleting one (a network VMs use is a 409, shown as the API says it).
import { call, get, Lease, Network } from "../api";
import { fill, h } from "../dom";
import { clearErrors, field, showAtField } from "../form";
import { showNetworkEdit } from "./network_edit";

export function networksPage(main: HTMLElement): () => void {
  const rows = h("tbody");
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const leasesBox = h("section", { class: "card", "aria-labelledby": "leases-title", hidden: true });
  const editBox = h("section", { class: "card wide network-edit", "aria-labelledby": "edit-network-title", hidden: true });

  const name = field("name", "Name", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }));
  const kind = field("kind", "Kind", h("select", {}, [["nat", "nat: DHCP, DNS and NAT to the host's uplink"],
    ["isolated", "isolated: VMs reach each other only"], ["bridged", "bridged: an existing host bridge"],
    ["vlan", "vlan: tagged frames on a parent link"]].map(([value, label]) => h("option", { value }, label))));
  const subnet = field("subnet4", "IPv4 subnet", h("input", { type: "text", placeholder: "10.0.101.0/24", spellcheck: "false" }),
    "A /29 or larger; empty: the first free /24 from 10.0.100.0.");
  const subnet6 = field("subnet6", "IPv6 subnet", h("input", { type: "text", placeholder: "fd00:101::/64", spellcheck: "false" }),
    "Optional, a /64: guests make their addresses from it (SLAAC); nat networks reach the uplink through NAT66.");
  const bridge = field("bridge", "Bridge", h("input", { type: "text", spellcheck: "false" }),
    "bridged: the host bridge to join. Others: the bridge to make (empty: crl-NAME).");
  const parent = field("parent", "Parent link", h("input", { type: "text", spellcheck: "false" }), "vlan only.");
  const vlan = field("vlan_id", "VLAN id", h("input", { type: "number", min: 1, max: 4094 }), "vlan only: 1-4094.");
  const fields = [name, kind, subnet, subnet6, bridge, parent, vlan];
  // Only the fields the chosen kind takes are shown.
  const showKind = () => {
    const value = kind.input.value;
    subnet.wrapper.hidden = value === "bridged";
    subnet6.wrapper.hidden = value !== "nat" && value !== "isolated";
    parent.wrapper.hidden = vlan.wrapper.hidden = value !== "vlan";
  };
  kind.input.addEventListener("change", showKind);
  showKind();
  const form = h("form", { class: "card network-form", "aria-labelledby": "new-network-title" },
    h("h2", { id: "new-network-title" }, "New network"), fields.map((each) => each.wrapper), h("button", { type: "submit" }, "Create"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(fields);
    const body: Record<string, unknown> = { name: name.input.value.trim(), kind: kind.input.value };
    for (const each of [subnet, subnet6, bridge, parent]) {
      if (!each.wrapper.hidden && each.input.value.trim()) body[each.api] = each.input.value.trim();
    }
    if (!vlan.wrapper.hidden && vlan.input.value) body.vlan_id = Number(vlan.input.value);
    try {
      const made = await call<Network>("POST", "/api/v1/networks", body);
      status.textContent = `${made.name} created (${made.kind}${made.subnet4 ? `, ${made.subnet4}` : ""})`;
      for (const each of [name, subnet, subnet6, bridge, parent, vlan]) each.input.value = "";
      void refresh();
    } catch (error) {
      if (!showAtField(fields, error)) status.textContent = (error as Error).message;
    }
  });

  const showLeases = async (network: Network) => {
    leasesBox.hidden = false;
    const body = h("tbody");
    fill(leasesBox, h("h2", { id: "leases-title", tabindex: "-1" }, `Leases on ${network.name}`), h("div", { class: "table-wrap" },
      h("table", { class: "list leases" }, h("caption", { class: "visually-hidden" }, `DHCP leases on ${network.name}`),
        h("thead", {}, h("tr", {}, ["Address", "MAC", "Host name", "Expires"].map((title) => h("th", { scope: "col" }, title)))), body)));
    leasesBox.querySelector("h2")!.focus();
    try {
      const leases = await get<Lease[]>(`/api/v1/networks/${encodeURIComponent(network.name)}/leases`);
      fill(body, leases.length ? leases.map((lease) => h("tr", {}, h("th", { scope: "row" }, lease.ipv4),
        h("td", { "data-label": "MAC" }, h("code", {}, lease.mac)), h("td", { "data-label": "Host name" }, lease.hostname || "—"),
        h("td", { "data-label": "Expires" }, new Date(lease.expires * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC")))
        : h("tr", {}, h("td", { colspan: 4 }, "No leases.")));
    } catch (error) {
      fill(body, h("tr", {}, h("td", { colspan: 4 }, (error as Error).message)));
    }
  };
  const remove = async (network: Network) => {
    if (!window.confirm(`Delete the network ${network.name}? Its bridge, DHCP server and firewall rules go with it.`)) return;
    try {
      await call("DELETE", `/api/v1/networks/${encodeURIComponent(network.name)}`);
      status.textContent = `${network.name} deleted`;
      leasesBox.hidden = true;
      editBox.hidden = true;
    } catch (error) {
      status.textContent = `delete ${network.name}: ${(error as Error).message}`;
    }
    void refresh();
  };

  fill(main, h("h1", {}, "Networks"), status, h("div", { class: "table-wrap" }, h("table", { class: "list networks" },
    h("caption", {}, "Networks"), h("thead", {}, h("tr", {}, ["Name", "Kind", "Subnet", "DHCP range", "Bridge", "VMs", "Problems", "Actions"]
      .map((title) => h("th", { scope: "col" }, title)))), rows)), h("div", { class: "grid" }, editBox, form, leasesBox));

  const refresh = async () => {
    const list = await get<Network[]>("/api/v1/networks");
    fill(rows, list.length ? list.map((network) => h("tr", { "data-network": network.name },
      h("th", { scope: "row" }, network.name),
      h("td", { "data-label": "Kind" }, network.kind, network.kind === "vlan" ? ` ${network.parent}.${network.vlan_id}` : ""),
      h("td", { "data-label": "Subnet" }, [network.subnet4, network.subnet6].filter(Boolean).join(" ") || "—"),
      h("td", { "data-label": "DHCP range" }, network.dhcp_start ? `${network.dhcp_start} - ${network.dhcp_end}` : "—"),
      h("td", { "data-label": "Bridge" }, h("code", {}, network.bridge)),
      h("td", { "data-label": "VMs" }, network.vms.length ? network.vms.flatMap((vm, i) =>
        [i ? ", " : "", h("a", { href: `#/vms/${encodeURIComponent(vm)}` }, vm)]) : "—"),
      h("td", { "data-label": "Problems" }, network.status?.problems.join("; ") || "—"),
      h("td", { "data-label": "Actions" }, h("div", { class: "actions", role: "group", "aria-label": `Actions for ${network.name}` },
        h("button", { type: "button", class: "secondary", "data-action": "edit-network",
          onclick: () => showNetworkEdit(editBox, network, status, () => void refresh()) }, "Edit"),
        network.kind === "nat" || network.kind === "isolated"
          ? h("button", { type: "button", class: "secondary", "data-action": "leases", onclick: () => void showLeases(network) }, "Leases") : null,
        h("button", { type: "button", class: "danger", "data-action": "delete-network", onclick: () => void remove(network) }, "Delete")))))
      : h("tr", {}, h("td", { colspan: 8 }, "No networks.")));
  };
  void refresh().catch((error) => (status.textContent = (error as Error).message));
  return () => {};
}
