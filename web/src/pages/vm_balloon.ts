// The VM page's memory card: the guest's total and available memory over time (from its balloon
// statistics in the metrics history) with the balloon target as a line, and a form that sets or
// clears the target kept with the VM (PUT /vms/{name}/balloon; applied now while it runs, and at
// every start).
import { Balloon, call, get, Series, Vm } from "../api";
import { bytesUnit, Chart } from "../charts";
import { fill, h, mib } from "../dom";
import { clearErrors, field, showAtField } from "../form";

const k_mib = 1024 * 1024;
const live = (state: string) => state === "running" || state === "paused";

export class BalloonCard {
  readonly element: HTMLElement;
  private readonly chart: Chart;
  private readonly facts = h("p", { class: "balloon-facts" });
  private readonly status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  private readonly target = field("target_mib", "Memory the guest keeps (MiB)", h("input", { type: "number", min: 1 }),
    "The balloon takes the rest back to the host. Kept with the VM: applied now if it runs, and at every start.");
  /** The target drawn as a line, in bytes; null: none kept (the guest has all its memory). */
  private targetBytes: number | null = null;
  private series: Series | undefined;
  private shownKey = "";
  private vmSeen: Vm | undefined;

  constructor(private readonly vm: string, private readonly onChange: () => void) {
    this.chart = new Chart({ title: "Guest memory (balloon statistics)", unit: bytesUnit, lines: [
      { label: "Total", values: (s) => s.guest_memory_total_bytes, color: "#7a3fd1" },
      { label: "Available", values: (s) => s.guest_memory_available_bytes, color: "#1c8a5a" },
      { label: "Balloon target (now)", values: (s) => s.time.map(() => this.targetBytes), color: "#d1682f" }] });
    const set = h("button", { type: "submit" }, "Set target");
    const clear = h("button", { type: "button", class: "secondary", "data-action": "clear-balloon",
      onclick: () => void this.put({ clear: true }, "balloon target cleared: the guest gets all its memory") }, "Clear");
    const form = h("form", { class: "balloon-form" }, this.target.wrapper, h("div", { class: "actions" }, set, clear));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const value = Number(this.target.input.value);
      void this.put({ target_mib: value }, `balloon target set to ${mib(value)}`);
    });
    this.element = h("section", { class: "card wide balloon-view", "aria-labelledby": "balloon-title" },
      h("h2", { id: "balloon-title" }, "Memory and balloon"), this.facts, this.chart.element, form, this.status);
  }

  private async put(body: Record<string, unknown>, done: string): Promise<void> {
    clearErrors([this.target]);
    try {
      await call<Balloon>("PUT", `/api/v1/vms/${encodeURIComponent(this.vm)}/balloon`, body);
      this.status.textContent = `${this.vm}: ${done}`;
      this.shownKey = "";  // the input shows what was stored
      this.onChange();
    } catch (error) {
      if (!showAtField([this.target], error)) this.status.textContent = (error as Error).message;
    }
  }

  /** Called with each new look at the VM. */
  update(vm: Vm): void {
    this.vmSeen = vm;
    this.draw(vm, vm.balloon ?? null);
  }

  /** Called with each new series: the balloon's size now, which moves without an event. */
  updateSeries(series: Series): void {
    this.series = series;
    this.chart.update(series);
    const vm = this.vmSeen;
    if (!vm || !live(vm.state)) return;
    void get<Balloon>(`/api/v1/vms/${encodeURIComponent(this.vm)}/balloon`).then((balloon) => {
      if (this.vmSeen === vm) this.draw(vm, balloon.actual_mib === null ? null : balloon);
    }, () => {});
  }

  private draw(vm: Vm, balloon: Balloon | null): void {
    const kept = vm.balloon_target_mib ?? null;
    this.targetBytes = (balloon ? balloon.target_mib : kept ?? vm.memory_mib) * k_mib;
    this.element.dataset.kept = kept === null ? "" : String(kept);
    fill(this.facts, kept === null ? `No balloon target kept: the guest has all of its ${mib(vm.memory_mib)}.`
      : `Target kept: ${mib(kept)} of ${mib(vm.memory_mib)}${live(vm.state) ? "" : ", applied when it starts"}.`,
    balloon && balloon.actual_mib !== null ? ` The guest has ${mib(balloon.actual_mib)} now` +
      ` (${mib(balloon.inflated_mib ?? 0)} given back).` : "");
    // The input follows the stored target, but not while someone types in it.
    const key = `${kept}/${vm.memory_mib}`;
    if (key !== this.shownKey) {
      this.shownKey = key;
      this.target.input.value = String(kept ?? vm.memory_mib);
      (this.target.input as HTMLInputElement).max = String(vm.memory_mib);
    }
    if (this.series) this.chart.update(this.series);
  }

  destroy(): void {
    this.chart.destroy();
  }
}
