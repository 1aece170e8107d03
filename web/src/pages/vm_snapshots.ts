// A VM's snapshots (the VM page's Snapshots tab): the tree as `corral vm snapshots` draws it
// (children under the snapshot that was current when they were taken, the current one marked),
// taking one (a task, its progress shown), restoring one (after a confirm) and deleting one.
// The API's errors appear at the field it names (a taken name is a 409 naming `name`).
import { ApiError, call, followTask, get, Snapshot, Vm } from "../api";
import { CoalescedRead } from "../coalesce";
import { bytes, fill, h } from "../dom";
import { clearErrors, field, showAtField } from "../form";

/** Depth-first order, each snapshot with its depth; a parent that is gone makes a root. */
export function snapshotTree(list: Snapshot[]): { snapshot: Snapshot; depth: number }[] {
  const names = new Set(list.map((each) => each.name));
  const children = new Map<string, Snapshot[]>();
  const roots: Snapshot[] = [];
  for (const each of list) {
    if (!each.parent || each.parent === each.name || !names.has(each.parent)) roots.push(each);
    else children.set(each.parent, [...(children.get(each.parent) ?? []), each]);
  }
  const rows: { snapshot: Snapshot; depth: number }[] = [];
  const shown = new Set<string>();
  const walk = (snapshot: Snapshot, depth: number) => {
    if (shown.has(snapshot.name)) return; // a cycle only a broken store could hold
    shown.add(snapshot.name);
    rows.push({ snapshot, depth });
    for (const child of children.get(snapshot.name) ?? []) walk(child, depth + 1);
  };
  for (const root of roots) walk(root, 0);
  for (const each of list) walk(each, 0);
  return rows;
}

export class SnapshotsView {
  readonly element: HTMLElement;
  private readonly rows = h("tbody");
  private readonly status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  private readonly progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Snapshot progress" });
  private state = "";
  private readonly reader = new CoalescedRead(() => this.read());
  private readonly path: string;

  constructor(private readonly vm: string) {
    this.path = `/api/v1/vms/${encodeURIComponent(vm)}/snapshots`;
    const name = field("name", "Name", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }),
      "Lowercase letters, digits and '-', starting with a letter.");
    const description = field("description", "Description", h("input", { type: "text", autocomplete: "off" }));
    const diskOnly = h("input", { type: "checkbox", id: `snapshot-disk-only-${vm}`, name: "disk_only" });
    const fields = [name, description];
    const submit = h("button", { type: "submit" }, "Take snapshot");
    const form = h("form", { class: "snapshot-form", "aria-label": "Take a snapshot" }, fields.map((each) => each.wrapper),
      h("div", { class: "field check" }, diskOnly, h("label", { for: diskOnly.id }, "Disks only"),
        h("p", { class: "help" }, "Of a running VM: its disks alone, without memory; the guest runs on.")),
      submit, this.progress);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(fields);
      submit.disabled = true;
      const snapshot = name.input.value.trim();
      try {
        const answer = await call<Snapshot & { task: string }>("POST", this.path,
          { name: snapshot, description: description.input.value, disk_only: diskOnly.checked });
        name.input.value = "";
        description.input.value = "";
        void this.refresh();
        await this.follow(answer.task, `taking ${snapshot}`);
        this.status.textContent = `${snapshot}: taken`;
      } catch (error) {
        if (!showAtField(fields, error)) this.status.textContent = `snapshot ${snapshot}: ${(error as Error).message}`;
      } finally {
        submit.disabled = false;
        void this.refresh();
      }
    });
    const table = h("div", { class: "table-wrap" }, h("table", { class: "list snapshots" },
      h("caption", {}, "Snapshots (children under the one they were taken from)"),
      h("thead", {}, h("tr", {}, ["Name", "Kind", "Status", "Size", "Taken", "Description", "Actions"]
        .map((title) => h("th", { scope: "col" }, title)))), this.rows));
    this.element = h("div", { class: "snapshots-view" }, this.status, table, form);
  }

  /** Called with each new look at the VM (the page looks again on each of its events, the
   *  snapshot events included, so snapshots taken elsewhere show up); restore needs it stopped. */
  update(vm: Vm): void {
    this.state = vm.state;
    void this.refresh();
  }

  /** Reads the list again (coalesced: coalesce.ts). */
  refresh(): Promise<void> {
    return this.reader.run();
  }

  private async read(): Promise<void> {
    let list: Snapshot[];
    try {
      list = await get<Snapshot[]>(this.path);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) this.status.textContent = (error as Error).message;
      return;
    }
    const stopped = this.state === "stopped" || this.state === "crashed" || this.state === "failed";
    fill(this.rows, list.length ? snapshotTree(list).map(({ snapshot, depth }) => h("tr", { "data-snapshot": snapshot.name,
      "data-current": snapshot.current ? "true" : false },
      h("th", { scope: "row" }, h("span", { class: "tree", style: `padding-left: ${depth * 1.2}em` },
        depth ? "└ " : "", snapshot.name), snapshot.current ? [" ", h("span", { class: "badge current" }, "current")] : null),
      h("td", { "data-label": "Kind" }, snapshot.kind),
      h("td", { "data-label": "Status" }, snapshot.status),
      h("td", { "data-label": "Size" }, bytes(snapshot.size_bytes)),
      h("td", { "data-label": "Taken" }, h("time", { datetime: snapshot.created_at }, snapshot.created_at.replace("T", " ").replace("Z", ""))),
      h("td", { "data-label": "Description" }, snapshot.description || "—"),
      h("td", { "data-label": "Actions" }, h("div", { class: "actions", role: "group", "aria-label": `Actions for snapshot ${snapshot.name}` },
        h("button", { type: "button", class: "secondary", "data-action": "restore",
          disabled: !stopped || snapshot.status !== "ready",
          title: stopped ? false : "Stop the VM first: its current state would be lost",
          onclick: () => void this.restore(snapshot) }, "Restore"),
        h("button", { type: "button", class: "danger", "data-action": "delete-snapshot", disabled: snapshot.status === "creating",
          onclick: () => void this.remove(snapshot) }, "Delete")))))
      : h("tr", {}, h("td", { colspan: 7 }, "No snapshots.")));
  }

  private async follow(task: string, what: string): Promise<void> {
    this.progress.hidden = false;
    this.progress.value = 0;
    try {
      await followTask(task, (each) => {
        this.progress.value = each.progress;
        this.status.textContent = `${what}: ${each.message || each.status} (${Math.round(each.progress * 100)}%)`;
      });
    } finally {
      this.progress.hidden = true;
    }
  }

  private async restore(snapshot: Snapshot): Promise<void> {
    const what = snapshot.kind === "memory" ? "start the VM from that instant" : "revert its disks";
    if (!window.confirm(`Restore ${this.vm} to ${snapshot.name}? This will ${what}; what changed since is lost.`)) return;
    try {
      const answer = await call<{ task: string }>("POST", `${this.path}/${encodeURIComponent(snapshot.name)}/restore`);
      await this.follow(answer.task, `restoring ${snapshot.name}`);
      this.status.textContent = `${snapshot.name}: restored`;
    } catch (error) {
      this.status.textContent = `restore ${snapshot.name}: ${(error as Error).message}`;
    }
    void this.refresh();
  }

  private async remove(snapshot: Snapshot): Promise<void> {
    if (!window.confirm(`Delete the snapshot ${snapshot.name} of ${this.vm}?`)) return;
    try {
      await call("DELETE", `${this.path}/${encodeURIComponent(snapshot.name)}`);
      this.status.textContent = `${snapshot.name}: deleted`;
    } catch (error) {
      this.status.textContent = `delete ${snapshot.name}: ${(error as Error).message}`;
    }
    void this.refresh();
  }
}
