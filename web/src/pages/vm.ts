// A VM: its state and actions, its settings (editable while stopped), the serial console and the
// screen (noVNC; tabs, one shown at a time), and charts of CPU, memory, disk and network over the
// last hour or day; the guest's memory and its balloon target (vm_balloon.ts); the Migrate action
// and a migration's progress (vm_migrate.ts).
import { ApiError, call, get, Series, Vm } from "../api";
import { actionButtons } from "../actions";
import { Chart, vmCharts } from "../charts";
import { ConsoleView } from "../console";
import { displayField, displayText, displayValue } from "../display";
import { fill, h, mib, stateBadge } from "../dom";
import { clearErrors, field, showAtField } from "../form";
import { subscribeEvents } from "../events";
import { ScreenView } from "../screen";
import { tabs } from "../tabs";
import { SlowPanel } from "./slow";
import { BalloonCard } from "./vm_balloon";
import { destinationOf, MigrateCard, migrationsOut, movedAway } from "./vm_migrate";
import { vmMoreCard } from "./vm_more";

const editable = (state: string) => state === "stopped" || state === "crashed" || state === "failed";

export function vmPage(main: HTMLElement, [name]: string[]): () => void {
  const path = `/api/v1/vms/${encodeURIComponent(name)}`;
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const summary = h("section", { class: "card", "aria-labelledby": "summary-title" });
  const settings = h("section", { class: "card", "aria-labelledby": "settings-title" });
  const consoleBox = h("section", { class: "card wide", "aria-labelledby": "console-title" });
  const range = h("select", { id: "chart-range" }, h("option", { value: "3600" }, "Last hour"),
    h("option", { value: "86400" }, "Last day"));
  const charts = vmCharts().map((spec) => new Chart(spec));
  const chartBox = h("section", { class: "card wide", "aria-labelledby": "charts-title" },
    h("div", { class: "heading" }, h("h2", { id: "charts-title" }, "Charts"),
      h("div", {}, h("label", { for: "chart-range" }, "Range "), range)),
    h("div", { class: "charts" }, charts.map((chart) => chart.element)));
  const slow = new SlowPanel();
  const balloon = new BalloonCard(name, () => void refresh());
  const migrate = new MigrateCard(name, () => void refresh());
  fill(main, h("div", { class: "heading" }, h("h1", {}, name), h("a", { href: "#/vms" }, "All VMs")), status,
    h("div", { class: "grid" }, summary, settings, migrate.element, consoleBox, chartBox, balloon.element, slow.element));
  // Snapshots and NICs: a card of their own (vm_more.ts), after the charts.
  const more = vmMoreCard(name);
  main.querySelector(".grid")!.append(more.element);
  const terminal = new ConsoleView(name);
  const screen = new ScreenView(name);
  // Two tabs (tabs.ts: the WAI-ARIA tabs pattern); the screen connects only while its tab is open.
  const consoleTabs = tabs([{ id: "serial", label: "Serial console", element: terminal.element },
    { id: "screen", label: "Screen", element: screen.element }], "console-title", (id) => screen.show(id === "screen"));
  fill(consoleBox, h("div", { class: "heading" }, h("h2", { id: "console-title" }, "Console"), consoleTabs.list),
    consoleTabs.panels);

  let shownState = "";
  const drawSettings = (vm: Vm) => {
    const vcpus = field("vcpus", "vCPUs", h("input", { type: "number", min: 1, value: vm.vcpus }));
    const memory = field("memory_mib", "Memory (MiB)", h("input", { type: "number", min: 64, value: vm.memory_mib }));
    const policy = field("restart_policy", "Restart policy", h("select", {},
      ["no", "on-failure", "always"].map((value) => h("option", { value, selected: value === vm.restart_policy }, value))));
    const cmdline = field("cmdline", "Extra kernel arguments", h("input", { type: "text", value: vm.cmdline }));
    const display = displayField(vm.display);
    const fields = [vcpus, memory, policy, cmdline, display];
    const locked = !editable(vm.state);
    for (const each of fields) each.input.disabled = locked;
    const save = h("button", { type: "submit", disabled: locked }, "Save");
    const form = h("form", {}, fields.map((each) => each.wrapper),
      locked ? h("p", { class: "help" }, `Settings change only while the VM is stopped (it is ${vm.state}).`) : null, save);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(fields);
      try {
        const change: Record<string, unknown> = { vcpus: Number(vcpus.input.value), memory_mib: Number(memory.input.value),
          restart_policy: policy.input.value, cmdline: cmdline.input.value };
        // Sent only when it changes (a corrald without displays knows no such field).
        if (display.input.value !== displayText(vm.display)) change.display = displayValue(display.input.value);
        await call("PATCH", path, change);
        status.textContent = `${name}: settings saved`;
        shownState = ""; // redraw the form from what was saved (the display it compares with)
        void refresh();
      } catch (error) {
        if (!showAtField(fields, error)) status.textContent = (error as Error).message;
      }
    });
    fill(settings, h("h2", { id: "settings-title" }, "Settings"), form);
  };

  const refresh = async () => {
    let vm: Vm;
    try {
      vm = await get<Vm>(path);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        // Gone from this host: migrated away (the figures of its migration), or deleted.
        const moved = await movedAway(name);
        fill(main, h("h1", {}, name), moved ?? h("p", {}, `There is no VM named ${name}. `), h("a", { href: "#/vms" }, "All VMs"));
      }
      return;
    }
    // A VM leaving stays "running" until the switch: its vm.migrate task says it is leaving.
    const leaving = vm.state === "running" ? (await migrationsOut().catch(() => new Map())).get(name) : undefined;
    const remove = h("button", { type: "button", class: "danger", disabled: !editable(vm.state), "data-action": "delete",
      onclick: async () => {
        if (!window.confirm(`Delete ${name} and the disks no other VM uses?`)) return;
        try {
          await call("DELETE", `${path}?volumes=true`);
          location.hash = "#/vms";
        } catch (error) {
          status.textContent = (error as Error).message;
        }
      } }, "Delete");
    fill(summary, h("h2", { id: "summary-title" }, "State"),
      h("p", {}, stateBadge(vm.state), " ",
        leaving ? [h("span", { class: "badge state-migrating", "data-migration": "out" }, "migrating out"), " "] : null,
        // Its progress lines do not name the destination; the first steps do.
        leaving ? `to ${destinationOf(leaving) || "another host"}` : vm.state_reason),
      h("dl", { class: "facts" },
        h("dt", {}, "Engine"), h("dd", {}, vm.engine),
        h("dt", {}, "vCPUs"), h("dd", {}, vm.vcpus),
        h("dt", {}, "Memory"), h("dd", {}, mib(vm.memory_mib)),
        h("dt", {}, "Display"), h("dd", {}, vm.display ? `${vm.display.width}×${vm.display.height}` : "none"),
        h("dt", {}, "Image"), h("dd", {}, vm.image ?? "—"),
        h("dt", {}, "Disks"), h("dd", {}, vm.disks.map((disk) => `${disk.pool}/${disk.volume}${disk.readonly ? " (read-only)" : ""}`).join(", ") || "—"),
        h("dt", {}, "NICs"), h("dd", {}, vm.nics.map((nic) => [nic.network ?? nic.bridge ?? nic.tap, nic.mac, nic.ipv4].filter(Boolean).join(" ")).join("; ") || "—"),
        h("dt", {}, "Uptime"), h("dd", {}, vm.uptime_seconds === null ? "—" : `${vm.uptime_seconds} s`),
        h("dt", {}, "Restarts"), h("dd", {}, vm.restarts),
        vm.last_crash ? [h("dt", {}, "Last crash"), h("dd", {}, vm.last_crash)] : null),
      actionButtons(name, vm.state, status, () => void refresh()), h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", "data-action": "migrate", disabled: vm.state !== "running" || !!leaving,
          title: "Move it live to another corrald", onclick: () => migrate.open() }, "Migrate…"), remove));
    migrate.update(vm, leaving);
    screen.update(vm);
    more.update(vm);
    balloon.update(vm);
    // The settings form is redrawn only when the state changes, so typing is not lost.
    if (vm.state !== shownState) {
      // A VM that came to run: the console's note ("not running") is stale, ask again.
      const live = (state: string) => state === "running" || state === "paused";
      if (shownState && live(vm.state) && !live(shownState)) terminal.reconnect();
      shownState = vm.state;
      drawSettings(vm);
    }
  };

  const loadCharts = async () => {
    const span = Number(range.value);
    const step = span > 3600 ? 60 : undefined;
    const since = Math.floor(Date.now() / 1000) - span;
    const series = await get<Series>(`${path}/metrics?since=${since}${step ? `&step=${step}` : ""}`);
    for (const chart of charts) chart.update(series);
    balloon.updateSeries(series);
    slow.update(series);
  };
  range.addEventListener("change", () => void loadCharts().catch(() => {}));

  void refresh();
  void loadCharts().catch(() => {});
  const chartTimer = window.setInterval(() => void loadCharts().catch(() => {}), 5000);
  const unsubscribe = subscribeEvents((event) => {
    if (event.target === name || event.task?.target === name) void refresh();
  });
  return () => {
    clearInterval(chartTimer);
    unsubscribe();
    terminal.destroy();
    screen.destroy();
    for (const chart of charts) chart.destroy();
    slow.destroy();
    balloon.destroy();
  };
}
