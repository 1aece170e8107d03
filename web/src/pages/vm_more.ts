// The VM page's card for what a VM has besides its console: snapshots, backups and network interfaces,
// as tabs (the slow-panel and other features get cards of their own, so the page's parts stay apart).
import { Vm } from "../api";
import { h } from "../dom";
import { tabs } from "../tabs";
import { BackupsView } from "./backups_view";
import { NicsView } from "./vm_nics";
import { SnapshotsView } from "./vm_snapshots";

export interface MoreCard {
  element: HTMLElement;
  /** Called with each new look at the VM. */
  update(vm: Vm): void;
}

export function vmMoreCard(name: string): MoreCard {
  const snapshots = new SnapshotsView(name);
  const backups = new BackupsView(name);
  const nics = new NicsView(name);
  // Backups are read when their tab opens (and again on the VM's events while it is open).
  let backupsOpen = false;
  const views = tabs([{ id: "snapshots", label: "Snapshots", element: snapshots.element },
    { id: "nics", label: "Network", element: nics.element },
    { id: "backups", label: "Backups", element: backups.element }], "more-title", (id) => {
    backupsOpen = id === "backups";
    if (backupsOpen) void backups.refresh();
  });
  const element = h("section", { class: "card wide", "aria-labelledby": "more-title" },
    h("div", { class: "heading" }, h("h2", { id: "more-title" }, "Snapshots, backups and network"), views.list), views.panels);
  return {
    element,
    update: (vm) => {
      snapshots.update(vm);
      nics.update(vm);
      if (backupsOpen) void backups.refresh();
    },
  };
}
