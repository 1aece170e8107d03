// Charts of the metrics history (uPlot): one chart per quantity, redrawn when new samples come.
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";
import { Series } from "./api";
import { bytes, h } from "./dom";

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

/** A chart in a figure with a caption; update() gives it a new series. */
export class Chart {
  readonly element: HTMLElement;
  private plot: uPlot | undefined;
  private readonly box: HTMLElement;
  private readonly observer: ResizeObserver;

  constructor(private readonly spec: ChartSpec) {
    this.box = h("div", { class: "plot" });
    this.element = h("figure", { class: "chart", "data-points": "0" }, h("figcaption", {}, spec.title), this.box);
    this.observer = new ResizeObserver(() => this.plot?.setSize(this.size()));
    this.observer.observe(this.box);
  }

  private size(): { width: number; height: number } {
    return { width: Math.max(this.box.clientWidth, 240), height: 160 };
  }

  update(series: Series): void {
    const data: uPlot.AlignedData = [series.time, ...this.spec.lines.map((line) => line.values(series) ?? [])];
    this.element.dataset.points = String(series.time.length);
    if (this.plot) {
      this.plot.setData(data);
      return;
    }
    const unit = this.spec.unit;
    this.plot = new uPlot({
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
