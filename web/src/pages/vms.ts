// The VM list: state, engine, CPUs, memory, addresses, a CPU sparkline of the last hour, actions
// and a filter. A VM leaving for another host says so beside its state (its vm.migrate task: its
// own state stays "running" until the switch); one arriving is in state migrating-in.
import { get, Series, Task, Vm } from "../api";
import { actionButtons } from "../actions";
import { fill, h, mib, stateBadge } from "../dom";
import { destinationOf, migrationsOut } from "./vm_migrate";

const svgNs = "http://www.w3.org/2000/svg";

/** A small line of CPU use (0 to the VM's vCPUs), for the table. */
function sparkline(values: (number | null)[], max: number): SVGSVGElement {
  const svg = document.createElementNS(svgNs, "svg");
  svg.setAttribute("viewBox", "0 0 100 24");
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  const last = [...values].reverse().find((value) => value !== null);
  svg.setAttribute("aria-label", last === undefined || last === null ? "no CPU data" : `CPU ${last.toFixed(2)} of ${max}`);
  const points = values.map((value, i) => value === null ? null :
    `${(i / Math.max(values.length - 1, 1)) * 100},${24 - Math.min(value / max, 1) * 22 - 1}`).filter(Boolean);
  const line = document.createElementNS(svgNs, "polyline");
  line.setAttribute("points", points.join(" "));
  svg.append(line);
  return svg;
}

function addresses(vm: Vm): string {
  return vm.nics.map((nic) => nic.ipv4 ?? nic.network ?? nic.bridge ?? nic.tap ?? "").filter(Boolean).join(", ") || "—";
}

export function vmsPage(main: HTMLElement): () => void {
  const filter = h("input", { id: "vm-filter", type: "search", placeholder: "name, state or engine" });
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const body = h("tbody");
  const table = h("table", { class: "list" },
    h("caption", { class: "visually-hidden" }, "VMs"),
    h("thead", {}, h("tr", {}, ["Name", "State", "Engine", "CPUs", "Memory", "Addresses", "CPU, last hour", "Actions"]
      .map((title) => h("th", { scope: "col" }, title)))),
    body);
  fill(main, h("div", { class: "heading" }, h("h1", {}, "VMs"), h("a", { class: "button", href: "#/vms/new" }, "New VM")),
    h("div", { class: "toolbar" }, h("label", { for: "vm-filter" }, "Filter"), filter), status,
    h("div", { class: "table-wrap" }, table));
  let vms: Vm[] = [];
  let leaving = new Map<string, Task>();
  const since = () => Math.floor(Date.now() / 1000) - 3600;
  const draw = async () => {
    const words = filter.value.trim().toLowerCase();
    const shown = vms.filter((vm) => !words ||
      `${vm.name} ${vm.state} ${leaving.has(vm.name) ? "migrating out" : ""} ${vm.engine}`.toLowerCase().includes(words));
    const rows = shown.map((vm) => {
      const spark = h("td", { "data-label": "CPU" });
      if (vm.state === "running" || vm.state === "paused")
        get<Series>(`/api/v1/vms/${encodeURIComponent(vm.name)}/metrics?since=${since()}&step=60`)
          .then((series) => spark.append(sparkline(series.cpu, vm.vcpus))).catch(() => {});
      return h("tr", { "data-vm": vm.name },
        h("th", { scope: "row" }, h("a", { href: `#/vms/${encodeURIComponent(vm.name)}` }, vm.name)),
        h("td", { "data-label": "State" }, stateBadge(vm.state), leaving.has(vm.name) ? [" ", h("span", {
          class: "badge state-migrating", "data-migration": "out", title: `to ${destinationOf(leaving.get(vm.name)!) || "another host"}`,
        }, "migrating out")] : null),
        h("td", { "data-label": "Engine" }, vm.engine),
        h("td", { "data-label": "CPUs" }, vm.vcpus),
        h("td", { "data-label": "Memory" }, mib(vm.memory_mib)),
        h("td", { "data-label": "Addresses" }, addresses(vm)),
        spark,
        h("td", { "data-label": "Actions" }, actionButtons(vm.name, vm.state, status, () => void refresh())));
    });
    fill(body, rows.length ? rows : h("tr", {}, h("td", { colspan: 8 }, vms.length ? "No VM matches the filter." : "No VMs yet.")));
  };
  const refresh = async () => {
    [vms, leaving] = await Promise.all([get<Vm[]>("/api/v1/vms"), migrationsOut().catch(() => new Map<string, Task>())]);
    await draw();
  };
  filter.addEventListener("input", () => void draw());
  void refresh().catch((error) => (status.textContent = (error as Error).message));
  // Not while the keyboard is in the table: redrawing it would lose the focused button.
  const timer = window.setInterval(() => {
    if (!table.contains(document.activeElement)) void refresh().catch(() => {});
  }, 10000);
  return () => clearInterval(timer);
}
