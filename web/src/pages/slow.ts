// The VM page's "why is it slow" panel (issue 15): for the last minutes, each cause of slowness
// (vCPUs waiting for a host CPU, the CPU cap holding the VM back, disk latency) with its figure,
// corrald's verdict and the fix, and a small chart of each over the page's range. The verdicts
// and their thresholds are corrald's (src/daemon/slow_diagnosis.h): the page only shows them.
import { Series, SlowCause } from "../api";
import { Chart } from "../charts";
import { fill, h } from "../dom";

const labels: Record<string, string> = {
  cpu_wait: "Waiting for a host CPU",
  cpu_cap: "Held back by its CPU cap",
  disk_read: "Disk read latency",
  disk_write: "Disk write latency",
};

const percentUnit = (value: number) => `${+(value * 100).toFixed(1)}%`;
// Two significant digits below 1 ms (a read from the host's page cache takes microseconds).
const msUnit = (value: number) => `${+(value < 1 ? value.toPrecision(2) : value.toFixed(1))} ms`;

function figure(cause: SlowCause): string {
  if (cause.value === null) return "—";
  return cause.unit === "ms" ? msUnit(cause.value) : percentUnit(cause.value);
}

export class SlowPanel {
  readonly element: HTMLElement;
  private readonly causes: HTMLElement;
  private readonly charts: Chart[];

  constructor() {
    this.charts = [
      new Chart({ title: "vCPU time lost (share)", unit: percentUnit, lines: [
        { label: "Waiting for a CPU", values: (s) => s.vcpu_run_delay, color: "#c23b3b" },
        { label: "Held back by the cap", values: (s) => s.cpu_throttled, color: "#7a3fd1" }] }),
      new Chart({ title: "Disk latency (per operation)", unit: msUnit, lines: [
        { label: "Read", values: (s) => s.disk_read_latency_ms, color: "#1c8a5a" },
        { label: "Write", values: (s) => s.disk_write_latency_ms, color: "#d1682f" }] }),
    ];
    this.causes = h("ul", { class: "slow-causes" }, h("li", {}, "Waiting for the first samples…"));
    this.element = h("section", { class: "card wide slow", "aria-labelledby": "slow-title" },
      h("h2", { id: "slow-title" }, "Why is it slow?"),
      h("p", { class: "help", id: "slow-window" }, "Over the last minutes:"),
      this.causes,
      h("div", { class: "charts" }, this.charts.map((chart) => chart.element)));
  }

  update(series: Series): void {
    for (const chart of this.charts) chart.update(series);
    const diagnosis = series.diagnosis;
    if (!diagnosis) return;
    this.element.querySelector("#slow-window")!.textContent =
      `Over the last ${Math.round(diagnosis.window_seconds / 60)} minutes:`;
    fill(this.causes, diagnosis.causes.map((cause) =>
      h("li", { class: `slow-cause level-${cause.level}`, "data-cause": cause.cause, "data-level": cause.level },
        h("span", { class: "slow-label" }, labels[cause.cause] ?? cause.cause),
        h("span", { class: "slow-figure" }, figure(cause)),
        h("span", { class: "slow-verdict" }, cause.verdict),
        cause.fix ? h("span", { class: "slow-fix" }, "Fix: ", cause.fix) : null)));
  }

  destroy(): void {
    for (const chart of this.charts) chart.destroy();
  }
}
