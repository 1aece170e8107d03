// Charts of the metrics history (uPlot): one chart per quantity, redrawn when new samples come.
// uPlot is a chunk of its own (lazy.ts), loaded when the first chart is made: until then each
// chart holds its place with "Loading the chart…", and if it cannot load, says why.
import type { uPlot } from "./lazy/uplot";
import { Series } from "./api";
import { bytes, fill, h } from "./dom";
import { chunkFailed, lazyChunk } from "./lazy";

const loadUplot = lazyChunk(() => import("./lazy/uplot"));

export interface Line {
  label: string;
  values: (s: Series) => (number | null)[] | undefined;
  color: string;
}

export interface ChartSpec {
  title: string;
  unit: (value: number) => string;
  lines: Line[];
}

/**
 * A chart in a figure with a caption; update() gives it a new series. Its data-state is
 * "loading" until uPlot's chunk came, then "ready" (or "failed"); data-points counts the drawn points.
 */
export class Chart {
  readonly element: HTMLElement;
  private plot: uPlot | undefined;
  private Plot: typeof uPlot | undefined;
  /** The last series given, drawn when uPlot has loaded. */
  private series: Series | undefined;
  private destroyed = false;
  private readonly box: HTMLElement;
  private readonly observer: ResizeObserver;

  constructor(private readonly spec: ChartSpec) {
    this.box = h("div", { class: "plot" }, h("p", { class: "help plot-note" }, "Loading the chart…"));
    this.element = h("figure", { class: "chart", "data-points": "0", "data-state": "loading" },
      h("figcaption", {}, spec.title), this.box);
    this.observer = new ResizeObserver(() => this.plot?.setSize(this.size()));
    this.observer.observe(this.box);
    loadUplot().then(({ uPlot }) => {
      if (this.destroyed) return;
      this.Plot = uPlot;
      this.element.dataset.state = "ready";
      this.box.replaceChildren();
      if (this.series) this.update(this.series);
    }, (error: unknown) => {
      if (this.destroyed) return;
      this.element.dataset.state = "failed";
      fill(this.box, h("p", { class: "plot-note" }, chunkFailed("chart", error)));
    });
  }

  private size(): { width: number; height: number } {
    return { width: Math.max(this.box.clientWidth, 240), height: 160 };
  }

  update(series: Series): void {
    this.series = series;
    const Plot = this.Plot;
    if (!Plot) return;
    const data: uPlot.AlignedData = [series.time, ...this.spec.lines.map((line) => line.values(series) ?? [])];
    this.element.dataset.points = String(series.time.length);
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    const unit = this.spec.unit;
    this.plot = new Plot({
      ...this.size(),
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      axes: [{}, { values: (_u, ticks) => ticks.map((tick) => unit(tick)), size: 90 }],
      series: [{}, ...this.spec.lines.map((line) => ({
        label: line.label,
        stroke: line.color,
        width: 2,
        spanGaps: false,
        value: (_u: uPlot, value: number | null) => (value === null ? "–" : unit(value)),
      }))],
    }, data, this.box);
  }

  destroy(): void {
    this.destroyed = true;
    this.observer.disconnect();
    this.plot?.destroy();
  }
}

export const cpuUnit = (value: number) => `${+value.toFixed(2)} CPU`;
export const bytesUnit = (value: number) => bytes(value);
export const rateUnit = (value: number) => `${bytes(value)}/s`;

/** The VM page's four charts. */
export function vmCharts(): ChartSpec[] {
  return [
    { title: "CPU (CPUs busy)", unit: cpuUnit, lines: [{ label: "CPU", values: (s) => s.cpu, color: "#2f6fdf" }] },
    { title: "Memory (resident)", unit: bytesUnit,
      lines: [{ label: "Memory", values: (s) => s.memory_bytes, color: "#7a3fd1" }] },
    { title: "Disk", unit: rateUnit, lines: [
      { label: "Read", values: (s) => s.disk_read_bytes_per_second, color: "#1c8a5a" },
      { label: "Write", values: (s) => s.disk_write_bytes_per_second, color: "#d1682f" }] },
    { title: "Network", unit: rateUnit, lines: [
      { label: "Received", values: (s) => s.net_rx_bytes_per_second, color: "#1c8a5a" },
      { label: "Sent", values: (s) => s.net_tx_bytes_per_second, color: "#d1682f" }] },
  ];
}

/** The dashboard's host charts. */
export function hostCharts(): ChartSpec[] {
  return [
    { title: "Host CPU (CPUs busy)", unit: cpuUnit, lines: [{ label: "CPU", values: (s) => s.cpu, color: "#2f6fdf" }] },
    { title: "Host memory (used)", unit: bytesUnit,
      lines: [{ label: "Used", values: (s) => s.memory_bytes, color: "#7a3fd1" }] },
  ];
}
