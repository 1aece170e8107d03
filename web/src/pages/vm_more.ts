// The VM page's card for what a VM has besides its console: snapshots and network interfaces,
// as tabs (the slow-panel and other features get cards of their own, so the page's parts stay apart).
import { Vm } from "../api";
import { h } from "../dom";
import { tabs } from "../tabs";
import { NicsView } from "./vm_nics";
import { SnapshotsView } from "./vm_snapshots";

export interface MoreCard {
  element: HTMLElement;
  /** Called with each new look at the VM. */
  update(vm: Vm): void;
}

export function vmMoreCard(name: string): MoreCard {
  const snapshots = new SnapshotsView(name);
  const nics = new NicsView(name);
  const views = tabs([{ id: "snapshots", label: "Snapshots", element: snapshots.element },
    { id: "nics", label: "Network", element: nics.element }], "more-title");
  const element = h("section", { class: "card wide", "aria-labelledby": "more-title" },
    h("div", { class: "heading" }, h("h2", { id: "more-title" }, "Snapshots and network"), views.list), views.panels);
  return {
    element,
    update: (vm) => {
      snapshots.update(vm);
      nics.update(vm);
    },
  };
}
