// Backups as a list with its actions, for the Backups page (every VM's) and the VM page's Backups
// tab (one VM's): back up now (a task, its progress shown), verify (re-reads every chunk),
// restore as a new VM (the name's error at its field) and delete. The API decides what is
// allowed (a running VM's backup is a 409 naming `vm`, shown as it says).
import { ApiError, Backup, BackupRepository, call, followTask, get, Vm } from "../api";
import { CoalescedRead } from "../coalesce";
import { bytes, fill, h } from "../dom";
import { clearErrors, field, Field, showAtField } from "../form";

const when = (iso: string) => iso.replace("T", " ").replace("Z", "");

export class BackupsView {
  readonly element: HTMLElement;
  private readonly rows = h("tbody");
  private readonly status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  private readonly progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Backup progress" });
  private readonly vmChoice: Field;
  private readonly repoChoice: Field;
  private readonly restoreBox = h("form", { class: "restore-form", "aria-label": "Restore a backup", hidden: true });
  private readonly reader = new CoalescedRead(() => this.read());

  /** `vm`: only that VM's backups, and "Back up now" backs it up; else every VM's, with a VM choice. */
  constructor(private readonly vm?: string) {
    this.vmChoice = field("vm", "VM", h("select", {}));
    this.repoChoice = field("repository", "Repository", h("select", {}));
    const fields = [this.vmChoice, this.repoChoice];
    this.vmChoice.wrapper.hidden = vm !== undefined;
    const submit = h("button", { type: "submit", "data-action": "backup-now" }, "Back up now");
    const form = h("form", { class: "backup-form", "aria-label": "Back up a VM" }, fields.map((each) => each.wrapper),
      h("p", { class: "help" }, "A VM's disks and configuration, deduplicated against what the repository holds; ",
        "a running VM's disks as they were at one instant, while it runs on."),
      submit, this.progress);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      clearErrors(fields);
      submit.disabled = true;
      const target = vm ?? this.vmChoice.input.value;
      const body: Record<string, unknown> = { vm: target };
      if (this.repoChoice.input.value) body.repository = this.repoChoice.input.value;
      try {
        const answer = await call<{ task: string }>("POST", "/api/v1/backups", body);
        const task = await this.follow(answer.task, `backing up ${target}`);
        this.status.textContent = task.message || `${target}: backed up`;
      } catch (error) {
        if (!showAtField(fields, error)) this.status.textContent = `back up ${target}: ${(error as Error).message}`;
      } finally {
        submit.disabled = false;
        void this.refresh();
      }
    });
    const columns = ["Backup", ...(vm === undefined ? ["VM"] : []), "Repository", "Taken", "Size", "Added", "Verified",
      "Booted", "Actions"];
    const table = h("div", { class: "table-wrap" }, h("table", { class: "list backups" },
      h("caption", {}, vm === undefined ? "Backups, oldest first" : `Backups of ${vm}, oldest first`),
      h("thead", {}, h("tr", {}, columns.map((title) => h("th", { scope: "col" }, title)))), this.rows));
    this.element = h("div", { class: "backups-view" }, this.status, table, this.restoreBox, form);
  }

  /** Reads the list again (coalesced: coalesce.ts). */
  refresh(): Promise<void> {
    return this.reader.run();
  }

  private async read(): Promise<void> {
    let list: Backup[];
    let repositories: BackupRepository[];
    try {
      [list, repositories] = await Promise.all([
        get<Backup[]>(`/api/v1/backups${this.vm === undefined ? "" : `?vm=${encodeURIComponent(this.vm)}`}`),
        get<BackupRepository[]>("/api/v1/backup-repositories")]);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) this.status.textContent = (error as Error).message;
      return;
    }
    this.fillChoices(repositories);
    const columns = this.vm === undefined ? 9 : 8;
    fill(this.rows, list.length ? list.map((backup) => h("tr", { "data-backup": backup.id },
      h("th", { scope: "row" }, h("code", {}, backup.id)),
      this.vm === undefined ? h("td", { "data-label": "VM" }, h("a", { href: `#/vms/${encodeURIComponent(backup.vm)}` }, backup.vm)) : null,
      h("td", { "data-label": "Repository" }, backup.repository),
      h("td", { "data-label": "Taken" }, h("time", { datetime: backup.created_at }, when(backup.created_at))),
      h("td", { "data-label": "Size" }, `${bytes(backup.logical_bytes)} in ${backup.disk_count} disk${backup.disk_count === 1 ? "" : "s"}`),
      h("td", { "data-label": "Added" }, bytes(backup.new_bytes)),
      h("td", { "data-label": "Verified", "data-verify": backup.verify.state ?? "never" }, this.verdict(backup)),
      h("td", { "data-label": "Booted", "data-boot": backup.boot?.state ?? "never" }, this.bootVerdict(backup)),
      h("td", { "data-label": "Actions" }, h("div", { class: "actions", role: "group", "aria-label": `Actions for backup ${backup.id}` },
        h("button", { type: "button", class: "secondary", "data-action": "verify", onclick: () => void this.verify(backup) }, "Verify"),
        h("button", { type: "button", class: "secondary", "data-action": "boot-check", title: "Restore it as a throwaway VM without NICs, boot it, wait for its ready line, delete it",
          onclick: () => void this.verify(backup, true) }, "Boot check"),
        h("button", { type: "button", class: "secondary", "data-action": "restore", onclick: () => this.askRestore(backup) }, "Restore…"),
        h("button", { type: "button", class: "danger", "data-action": "delete-backup", onclick: () => void this.remove(backup) }, "Delete")))))
      : h("tr", {}, h("td", { colspan: columns }, repositories.length ? "No backups."
        : ["No backup repository yet: add one on the ", h("a", { href: "#/backups" }, "Backups"), " page."])));
  }

  private verdict(backup: Backup): (Node | string)[] {
    const { state, at, error } = backup.verify;
    if (state === null) return ["never"];
    const badge = h("span", { class: `badge ${state === "ok" ? "state-running" : "state-crashed"}` }, state === "ok" ? "good" : "bad");
    return [badge, at ? ` ${when(at)}` : "", error ? h("p", { class: "help" }, error) : ""];
  }

  private bootVerdict(backup: Backup): (Node | string)[] {
    const boot = backup.boot;
    if (!boot || boot.state === null) return ["never"];
    const badge = h("span", { class: `badge ${boot.state === "passed" ? "state-running" : "state-crashed"}` }, boot.state);
    return [badge, boot.at ? ` ${when(boot.at)}` : "", boot.state === "passed" && boot.seconds !== null ? ` (${boot.seconds} s)` : "",
      boot.error ? h("p", { class: "help" }, boot.error) : ""];
  }

  /** The VM and repository choices, keeping what is chosen; the VM list only on the Backups page. */
  private fillChoices(repositories: BackupRepository[]): void {
    const repoSelect = this.repoChoice.input as HTMLSelectElement;
    const chosen = repoSelect.value;
    fill(repoSelect, repositories.map((repo) => h("option", { value: repo.name, selected: repo.name === chosen }, repo.name)));
    // One repository is taken without asking (the API does the same).
    this.repoChoice.wrapper.hidden = repositories.length < 2;
    if (this.vm !== undefined) return;
    void get<Vm[]>("/api/v1/vms").then((vms) => {
      const vmSelect = this.vmChoice.input as HTMLSelectElement;
      const current = vmSelect.value;
      fill(vmSelect, vms.map((each) => h("option", { value: each.name, selected: each.name === current }, `${each.name} (${each.state})`)));
    }).catch(() => {});
  }

  private async follow(task: string, what: string) {
    this.progress.hidden = false;
    this.progress.value = 0;
    try {
      return await followTask(task, (each) => {
        this.progress.value = each.progress;
        this.status.textContent = `${what}: ${each.message || each.status} (${Math.round(each.progress * 100)}%)`;
      });
    } finally {
      this.progress.hidden = true;
    }
  }

  private query(backup: Backup): string {
    return `/api/v1/backups/${encodeURIComponent(backup.id)}?repository=${encodeURIComponent(backup.repository)}`;
  }

  /** Re-reads its chunks; with `boot`, proves it boots (a throwaway VM, the verdict kept on it). */
  private async verify(backup: Backup, boot = false): Promise<void> {
    const path = this.query(backup).replace("?", "/verify?");
    const what = boot ? "boot check of" : "verify";
    try {
      const answer = await call<{ task: string }>("POST", path, boot ? { boot: true } : undefined);
      const task = await this.follow(answer.task, `${boot ? "boot-checking" : "verifying"} ${backup.id}`);
      this.status.textContent = task.message || `${backup.id}: ${boot ? "booted" : "good"}`;
    } catch (error) {
      this.status.textContent = `${what} ${backup.id}: ${(error as Error).message}`;
    }
    void this.refresh();
  }

  /** The restore form under the list, for `backup`: the new VM's name, its error at the field. */
  private askRestore(backup: Backup): void {
    const as = field("as", "New VM's name", h("input", { type: "text", autocomplete: "off", spellcheck: "false",
      value: `${backup.vm}-restored` }), "A name no VM has: the disks become new volumes, the VM is defined stopped, without NICs.");
    const submit = h("button", { type: "submit" }, "Restore");
    const cancel = h("button", { type: "button", class: "secondary", onclick: () => (this.restoreBox.hidden = true) }, "Cancel");
    fill(this.restoreBox, h("h3", {}, `Restore ${backup.id}`), as.wrapper, h("div", { class: "actions" }, submit, cancel));
    this.restoreBox.onsubmit = async (event) => {
      event.preventDefault();
      clearErrors([as]);
      submit.disabled = true;
      const name = as.input.value.trim();
      try {
        const answer = await call<{ task: string }>("POST", this.query(backup).replace("?", "/restore?"), { as: name });
        await this.follow(answer.task, `restoring ${backup.id} as ${name}`);
        this.restoreBox.hidden = true;
        fill(this.status, `${backup.id} restored as `, h("a", { href: `#/vms/${encodeURIComponent(name)}` }, name));
      } catch (error) {
        if (!showAtField([as], error)) this.status.textContent = `restore ${backup.id}: ${(error as Error).message}`;
      } finally {
        submit.disabled = false;
      }
    };
    this.restoreBox.hidden = false;
    as.input.focus();
  }

  private async remove(backup: Backup): Promise<void> {
    if (!window.confirm(`Delete the backup ${backup.id} of ${backup.vm}? Its chunks are freed by the next garbage collection.`)) return;
    try {
      await call("DELETE", this.query(backup));
      this.status.textContent = `${backup.id}: deleted`;
    } catch (error) {
      this.status.textContent = `delete ${backup.id}: ${(error as Error).message}`;
    }
    void this.refresh();
  }
}
