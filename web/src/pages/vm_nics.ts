// A VM's NICs (the VM page's Network tab): each with its network, MAC, address and security
// groups; a NIC on a managed (nat or isolated) network gets its groups changed here, applied at
// once even while the VM runs (PUT /vms/{name}/nics/{index}/groups).
import { call, get, Nic, Vm } from "../api";
import { fill, h } from "../dom";

interface Group { name: string; description: string }

export class NicsView {
  readonly element: HTMLElement;
  private readonly rows = h("tbody");
  private readonly status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  private shown = "";
  private groups: Group[] | undefined;

  constructor(private readonly vm: string) {
    this.element = h("div", { class: "nics-view" }, this.status, h("div", { class: "table-wrap" },
      h("table", { class: "list nics" }, h("caption", {}, "Network interfaces"),
        h("thead", {}, h("tr", {}, ["NIC", "Network", "MAC", "Address", "Security groups"]
          .map((title) => h("th", { scope: "col" }, title)))), this.rows)),
      h("p", { class: "help" }, "A NIC without groups passes everything; with groups, only what they allow gets in. ",
        h("a", { href: "#/networks" }, "Networks")));
  }

  /** Redraws when the NICs changed (not on every look, so a half-ticked group list stays). */
  update(vm: Vm): void {
    const nics = vm.nics as Nic[];
    const key = JSON.stringify(nics);
    if (key === this.shown) return;
    this.shown = key;
    void this.draw(nics);
  }

  private async draw(nics: Nic[]): Promise<void> {
    if (!this.groups && nics.some((nic) => nic.groups))
      this.groups = await get<Group[]>("/api/v1/security-groups").catch(() => []);
    fill(this.rows, nics.length ? nics.map((nic, index) => h("tr", { "data-nic": index },
      h("th", { scope: "row" }, `#${index}`),
      h("td", { "data-label": "Network" }, nic.network ? h("a", { href: "#/networks" }, nic.network)
        : nic.bridge ? `bridge ${nic.bridge}` : nic.tap ? `tap ${nic.tap}` : "—"),
      h("td", { "data-label": "MAC" }, h("code", {}, nic.mac)),
      h("td", { "data-label": "Address", class: "nic-address" }, [nic.ipv4, nic.ipv6].filter(Boolean).join(" ") || "—"),
      h("td", { "data-label": "Security groups" }, nic.groups ? this.groupEditor(index, nic.groups) : "— (not a managed network)")))
      : h("tr", {}, h("td", { colspan: 5 }, "No NICs.")));
  }

  private groupEditor(index: number, current: string[]): HTMLElement {
    const boxes = (this.groups ?? []).map((group) => {
      const id = `nic-${this.vm}-${index}-group-${group.name}`;
      return h("span", { class: "check" }, h("input", { type: "checkbox", id, value: group.name, checked: current.includes(group.name) }),
        h("label", { for: id, title: group.description || false }, group.name));
    });
    const error = h("p", { class: "field-error", id: `nic-${index}-groups-error`, "aria-live": "polite" });
    const form = h("form", { class: "groups", "aria-label": `Security groups of NIC ${index}`, "aria-describedby": error.id },
      boxes.length ? boxes : h("span", { class: "help" }, "No security groups defined."),
      boxes.length ? h("button", { type: "submit", class: "secondary" }, "Apply") : null, error);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      error.textContent = "";
      const groups = [...form.querySelectorAll<HTMLInputElement>("input:checked")].map((box) => box.value);
      try {
        await call("PUT", `/api/v1/vms/${encodeURIComponent(this.vm)}/nics/${index}/groups`, { groups });
        this.status.textContent = `NIC #${index}: groups ${groups.join(", ") || "none"}`;
      } catch (fault) {
        error.textContent = (fault as Error).message;
      }
    });
    return form;
  }
}
