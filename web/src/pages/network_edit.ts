// A network's Edit form (PATCH /networks/{name}): what the API lets change (its addresses, DHCP
// range, IPv6 subnet, MTU, DNS forwarders and reservations; name, kind and bridge stay). Only the
// fields the user changed are sent, so that a moved subnet derives the addresses left alone again
// (docs/api.md "Networks"); the API's error appears at the field it names, a list's item
// ("dns_forwarders[1]", "reservations[0].ipv4") at its list.
import { call, Network, Reservation } from "../api";
import { fill, h } from "../dom";
import { clearErrors, field, Field, showAtField } from "../form";

const text = (value: string | null | undefined) => value ?? "";

/** Reservations as the form shows them: one a line, "MAC ADDRESS [HOST NAME]". */
const reservationLines = (list: Reservation[]) =>
  list.map((each) => [each.mac, each.ipv4, each.hostname].filter(Boolean).join(" ")).join("\n");

function parseReservations(lines: string): Reservation[] {
  return lines.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
    const [mac = "", ipv4 = "", hostname] = line.split(/\s+/);
    return hostname ? { mac, ipv4, hostname } : { mac, ipv4 };
  });
}

const words = (value: string) => value.split(/[\s,]+/).filter(Boolean);

/** Fills `box` with the Edit form of `network`; `done` runs with the network as saved. */
export function showNetworkEdit(box: HTMLElement, network: Network, status: HTMLElement, done: (saved: Network) => void): void {
  const managed = network.kind === "nat" || network.kind === "isolated";
  const input = (value: string | number, placeholder = "") =>
    h("input", { type: "text", spellcheck: "false", autocomplete: "off", value, placeholder });
  const subnet4 = field("subnet4", "IPv4 subnet", input(text(network.subnet4)),
    "Moving it derives the gateway and DHCP range again unless you change them too; a VM's address left outside is refused.");
  const gateway4 = field("gateway4", "Gateway", input(text(network.gateway4)), "The host's address on the bridge.");
  const dhcpStart = field("dhcp_start", "DHCP range start", input(text(network.dhcp_start)));
  const dhcpEnd = field("dhcp_end", "DHCP range end", input(text(network.dhcp_end)),
    "NICs get fixed addresses from outside the range.");
  const subnet6 = field("subnet6", "IPv6 subnet", input(text(network.subnet6), "fd00:101::/64"), "A /64; empty: none.");
  const mtu = field("mtu", "MTU", h("input", { type: "number", min: 576, max: 9000, value: network.mtu }), "576-9000.");
  const dns = field("dns_forwarders", "DNS forwarders", input((network.dns_forwarders ?? []).join(", "), "192.0.2.53"),
    "Addresses, separated by commas; empty: the host's resolvers.");
  const reservations = field("reservations", "Reservations", h("textarea", { rows: 3, spellcheck: "false",
    placeholder: "52:54:00:00:00:05 10.0.100.5 db" }, reservationLines(network.reservations ?? [])),
    "One a line: MAC, IPv4 address, and a host name if wanted.");
  const fields: Field[] = managed ? [subnet4, gateway4, dhcpStart, dhcpEnd, subnet6, mtu, dns, reservations] : [mtu];
  const save = h("button", { type: "submit" }, "Save");
  const cancel = h("button", { type: "button", class: "secondary", onclick: () => (box.hidden = true) }, "Cancel");
  const form = h("form", { class: "network-edit-form", "data-network": network.name, novalidate: true },
    h("div", { class: "fields-row" }, fields.map((each) => each.wrapper)),
    managed ? null : h("p", { class: "help" }, `A ${network.kind} network gets no addresses from corrald: only its MTU changes here.`),
    h("div", { class: "actions" }, save, cancel));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(fields);
    const change: Record<string, unknown> = {};
    for (const [each, before] of [[subnet4, network.subnet4], [gateway4, network.gateway4], [dhcpStart, network.dhcp_start],
      [dhcpEnd, network.dhcp_end], [subnet6, network.subnet6]] as [Field, string | null][]) {
      const value = each.input.value.trim();
      if (fields.includes(each) && value !== text(before)) change[each.api] = value;
    }
    if (mtu.input.value !== "" && Number(mtu.input.value) !== network.mtu) change.mtu = Number(mtu.input.value);
    if (managed && words(dns.input.value).join(",") !== (network.dns_forwarders ?? []).join(","))
      change.dns_forwarders = words(dns.input.value);
    if (managed && reservationLines(parseReservations(reservations.input.value)) !== reservationLines(network.reservations ?? []))
      change.reservations = parseReservations(reservations.input.value);
    if (!Object.keys(change).length) {
      status.textContent = `${network.name}: nothing changed`;
      return;
    }
    save.disabled = true;
    try {
      const saved = await call<Network>("PATCH", `/api/v1/networks/${encodeURIComponent(network.name)}`, change);
      status.textContent = `${saved.name} saved: ${Object.keys(change).join(", ")}` +
        (saved.dhcp_start ? ` (DHCP ${saved.dhcp_start} - ${saved.dhcp_end})` : "");
      box.hidden = true;
      done(saved);
    } catch (error) {
      if (!showAtField(fields, error)) status.textContent = `edit ${network.name}: ${(error as Error).message}`;
    } finally {
      save.disabled = false;
    }
  });
  box.hidden = false;
  fill(box, h("h2", { id: "edit-network-title", tabindex: "-1" }, `Edit ${network.name}`),
    h("p", { class: "help" }, `${network.kind}, bridge `, h("code", {}, network.bridge),
      ". Name, kind and bridge cannot change. A change that cannot be applied is rolled back."), form);
  box.querySelector("h2")!.focus();
}
