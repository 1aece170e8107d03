// Backups: the repositories corrald knows (folder, encryption, how many backups, why one cannot be
// opened), adding one (a host folder: over the network only inside a folder corrald was started
// with --allow-path, else the API's 403 at the path field), pruning by keep rules, collecting
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
  const prune = async (repo: BackupRepository) => {
    const answer = window.prompt(`Prune ${repo.name}: keep how many newest backups of each VM? (its other backups are removed)`, "7");
    if (answer === null) return;
    try {
      const result = await call<{ kept: string[]; removed: string[] }>("POST", `${repoPath(repo)}/prune`,
        { keep_last: Number(answer) });
      status.textContent = `${repo.name}: kept ${result.kept.length}, removed ${result.removed.length} (run garbage collection to free their chunks)`;
    } catch (error) {
      status.textContent = `prune ${repo.name}: ${(error as Error).message}`;
    }
    void refresh();
  };
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
    h("h2", { id: "backups-title" }, "Backups"), backups.element), form));

  const refresh = async () => {
    const list = await get<BackupRepository[]>("/api/v1/backup-repositories");
    fill(rows, list.length ? list.map((repo) => h("tr", { "data-repository": repo.name },
      h("th", { scope: "row" }, repo.name),
      h("td", { "data-label": "Folder" }, h("code", {}, repo.path)),
      h("td", { "data-label": "Encrypted" }, repo.encrypted ? "yes" : "no"),
      h("td", { "data-label": "Backups" }, repo.backups ?? h("span", { class: "field-error" }, repo.error ?? "cannot be opened")),
      h("td", { "data-label": "Chunk size" }, repo.chunk_size === null ? "—" : bytes(repo.chunk_size)),
      h("td", { "data-label": "Actions" }, h("div", { class: "actions", role: "group", "aria-label": `Actions for repository ${repo.name}` },
        h("button", { type: "button", class: "secondary", "data-action": "prune", onclick: () => void prune(repo) }, "Prune…"),
        h("button", { type: "button", class: "secondary", "data-action": "gc", onclick: () => void collect(repo) }, "Collect garbage"),
        h("button", { type: "button", class: "danger", "data-action": "forget", onclick: () => void forget(repo) }, "Forget")))))
      : h("tr", {}, h("td", { colspan: 6 }, "No repositories yet: add one below.")));
    void backups.refresh();
  };
  void refresh().catch((error) => (status.textContent = (error as Error).message));
  return () => {};
}
