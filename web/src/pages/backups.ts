// Backups: the repositories corrald knows (folder, encryption, how many backups, why one cannot be
// opened), adding one (a host folder: over the network only inside a folder corrald was started
// with --allow-path, else the API's 403 at the path field), pruning by the keep rules, collecting
// garbage, forgetting one; then every backup (backups_view.ts).
import { BackupRepository, call, followTask, get } from "../api";
import { bytes, fill, h } from "../dom";
import { clearErrors, field, showAtField } from "../form";
import { BackupsView } from "./backups_view";

export function backupsPage(main: HTMLElement): () => void {
  const rows = h("tbody");
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const backups = new BackupsView();

  const name = field("name", "Name", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }));
  const path = field("path", "Folder", h("input", { type: "text", placeholder: "/srv/backups", spellcheck: "false" }),
    "An absolute folder on the host (empty or missing to make one; or one that holds a repository).");
  const key = field("key", "Key file", h("input", { type: "text", spellcheck: "false" }),
    "Optional: an absolute key file (32 to 4096 bytes): the repository is encrypted with it.");
  const create = h("input", { type: "checkbox", id: "repo-create", name: "create", checked: true });
  const fields = [name, path, key];
  const form = h("form", { class: "card repo-form", "aria-labelledby": "new-repo-title" },
    h("h2", { id: "new-repo-title" }, "Add a repository"), fields.map((each) => each.wrapper),
    h("div", { class: "field check" }, create, h("label", { for: create.id }, "Make a new repository there"),
      h("p", { class: "help" }, "Unticked: the folder must already hold one (made by another host or corral-backup).")),
    h("button", { type: "submit" }, "Add"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(fields);
    const body: Record<string, unknown> = { name: name.input.value.trim(), path: path.input.value.trim(), create: create.checked };
    if (key.input.value.trim()) body.key = key.input.value.trim();
    try {
      const made = await call<BackupRepository>("POST", "/api/v1/backup-repositories", body);
      status.textContent = `${made.name} added (${made.path}${made.encrypted ? ", encrypted" : ""})`;
      for (const each of fields) each.input.value = "";
      void refresh();
    } catch (error) {
      if (!showAtField(fields, error)) status.textContent = (error as Error).message;
    }
  });

  const repoPath = (repo: BackupRepository) => `/api/v1/backup-repositories/${encodeURIComponent(repo.name)}`;
  // Prune: the keep rules of `corral backup prune` (at least one above 0, the API says so at the
  // field), for one VM or each VM on its own; "only show" is a dry run that lists what would go.
  const pruneRepo = field("repository", "Repository", h("select", {}));
  const pruneVm = field("vm", "VM", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }),
    "Empty: each VM's backups, each VM on its own.");
  const keep = (api: string, label: string, help: string) =>
    field(api, label, h("input", { type: "number", min: 0, max: 100000, placeholder: "0" }), help);
  const keepFields = [keep("keep_last", "Keep last", "The newest N backups."),
    keep("keep_daily", "Keep daily", "The newest of each of the last N days (UTC)."),
    keep("keep_weekly", "Keep weekly", "The newest of each of the last N ISO weeks."),
    keep("keep_monthly", "Keep monthly", "The newest of each of the last N months.")];
  const dryRun = h("input", { type: "checkbox", id: "prune-dry-run", name: "dry_run", checked: true });
  const pruneFields = [pruneRepo, pruneVm, ...keepFields];
  const pruneForm = h("form", { class: "card prune-form", "aria-labelledby": "prune-title" },
    h("h2", { id: "prune-title" }, "Prune"), pruneRepo.wrapper, pruneVm.wrapper,
    h("div", { class: "fields-row" }, keepFields.map((each) => each.wrapper)),
    h("div", { class: "field check" }, dryRun, h("label", { for: dryRun.id }, "Only show what would be removed"),
      h("p", { class: "help" }, "Removed backups' chunks are freed by garbage collection.")),
    h("button", { type: "submit" }, "Prune"));
  pruneForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(pruneFields);
    const repo = pruneRepo.input.value;
    const body: Record<string, unknown> = { dry_run: dryRun.checked };
    for (const each of keepFields) if (each.input.value) body[each.api] = Number(each.input.value);
    if (pruneVm.input.value.trim()) body.vm = pruneVm.input.value.trim();
    try {
      const result = await call<{ kept: string[]; removed: string[] }>("POST",
        `/api/v1/backup-repositories/${encodeURIComponent(repo)}/prune`, body);
      const removed = result.removed.length ? `: ${result.removed.join(", ")}` : "";
      status.textContent = dryRun.checked
        ? `${repo}: prune would keep ${result.kept.length} and remove ${result.removed.length}${removed}`
        : `${repo}: kept ${result.kept.length}, removed ${result.removed.length}${removed} (collect garbage to free their chunks)`;
    } catch (error) {
      if (!showAtField(pruneFields, error)) status.textContent = `prune ${repo}: ${(error as Error).message}`;
    }
    void refresh();
  });
  const collect = async (repo: BackupRepository) => {
    try {
      const answer = await call<{ task: string }>("POST", `${repoPath(repo)}/gc`);
      const task = await followTask(answer.task, (each) => (status.textContent = `${repo.name}: garbage collection ${each.status}`));
      status.textContent = `${repo.name}: ${task.message}`;
    } catch (error) {
      status.textContent = `garbage collection of ${repo.name}: ${(error as Error).message}`;
    }
    void refresh();
  };
  const forget = async (repo: BackupRepository) => {
    if (!window.confirm(`Forget the repository ${repo.name}? Its folder and backups stay on the host.`)) return;
    try {
      await call("DELETE", repoPath(repo));
      status.textContent = `${repo.name} forgotten (its folder ${repo.path} stays)`;
    } catch (error) {
      status.textContent = `forget ${repo.name}: ${(error as Error).message}`;
    }
    void refresh();
  };

  fill(main, h("h1", {}, "Backups"), status, h("div", { class: "table-wrap" }, h("table", { class: "list repositories" },
    h("caption", {}, "Repositories"), h("thead", {}, h("tr", {}, ["Name", "Folder", "Encrypted", "Backups", "Chunk size",
      "Actions"].map((title) => h("th", { scope: "col" }, title)))), rows)),
  h("div", { class: "grid" }, h("section", { class: "card wide", "aria-labelledby": "backups-title" },
    h("h2", { id: "backups-title" }, "Backups"), backups.element), form, pruneForm));

  const refresh = async () => {
    const list = await get<BackupRepository[]>("/api/v1/backup-repositories");
    const chosen = pruneRepo.input.value;
    fill(pruneRepo.input, list.map((repo) => h("option", { value: repo.name, selected: repo.name === chosen }, repo.name)));
    pruneForm.hidden = list.length === 0;
    fill(rows, list.length ? list.map((repo) => h("tr", { "data-repository": repo.name },
      h("th", { scope: "row" }, repo.name),
      h("td", { "data-label": "Folder" }, h("code", {}, repo.path)),
      h("td", { "data-label": "Encrypted" }, repo.encrypted ? "yes" : "no"),
      h("td", { "data-label": "Backups" }, repo.backups ?? h("span", { class: "field-error" }, repo.error ?? "cannot be opened")),
      h("td", { "data-label": "Chunk size" }, repo.chunk_size === null ? "—" : bytes(repo.chunk_size)),
      h("td", { "data-label": "Actions" }, h("div", { class: "actions", role: "group", "aria-label": `Actions for repository ${repo.name}` },
        h("button", { type: "button", class: "secondary", "data-action": "gc", onclick: () => void collect(repo) }, "Collect garbage"),
        h("button", { type: "button", class: "danger", "data-action": "forget", onclick: () => void forget(repo) }, "Forget")))))
      : h("tr", {}, h("td", { colspan: 6 }, "No repositories yet: add one below.")));
    void backups.refresh();
  };
  void refresh().catch((error) => (status.textContent = (error as Error).message));
  return () => {};
}
