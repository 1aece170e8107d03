// Tasks: the recent ones, newest first, with progress; a copy, import or export can be cancelled.
import { call, get, Task } from "../api";
import { fill, h } from "../dom";

const cancellable = new Set(["volume.clone", "volume.import", "volume.export", "image.prepare"]);

export function tasksPage(main: HTMLElement): () => void {
  const body = h("tbody");
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  fill(main, h("h1", {}, "Tasks"), status, h("div", { class: "table-wrap" }, h("table", { class: "list" },
    h("caption", { class: "visually-hidden" }, "Tasks"),
    h("thead", {}, h("tr", {}, ["Task", "Kind", "Target", "Status", "Progress", "Message", ""].map((title) =>
      h("th", { scope: "col" }, title)))), body)));
  const refresh = async () => {
    const tasks = await get<Task[]>("/api/v1/tasks");
    fill(body, tasks.map((task) => {
      const live = task.status === "running" || task.status === "queued";
      return h("tr", {}, h("th", { scope: "row" }, task.id), h("td", { "data-label": "Kind" }, task.kind),
        h("td", { "data-label": "Target" }, task.target), h("td", { "data-label": "Status" }, task.status),
        h("td", { "data-label": "Progress" }, h("progress", { max: 1, value: task.progress, "aria-label": `${task.id} progress` })),
        h("td", { "data-label": "Message" }, task.error ?? task.message),
        h("td", {}, live && cancellable.has(task.kind) ? h("button", { type: "button", class: "secondary", onclick: async () => {
          try {
            await call("POST", `/api/v1/tasks/${encodeURIComponent(task.id)}/cancel`, {});
            status.textContent = `${task.id}: cancelling`;
          } catch (error) {
            status.textContent = (error as Error).message;
          }
        } }, "Cancel") : null));
    }));
  };
  void refresh().catch((error) => (status.textContent = (error as Error).message));
  const timer = window.setInterval(() => {
    if (!body.contains(document.activeElement)) void refresh().catch(() => {});
  }, 3000);
  return () => clearInterval(timer);
}
