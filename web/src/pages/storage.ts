// Storage: pools with their usage; volumes with what uses them, and making, cloning (linked, or a
// full copy as a task with progress) and deleting them; importing a disk image from this computer
// (an upload with a progress bar) and exporting one (a download). The API's errors appear at the field.
import { call, get, Pool, Task, Volume, waitTask } from "../api";
import { importForm } from "./storage_import";
import { bytes, fill, h } from "../dom";
import { clearErrors, field, showAtField } from "../form";

/** Downloads of the volume's disk (GET /volumes/{pool}/{name}/content): a compacted qcow2, or every byte raw. */
function exportLinks(volume: Volume): HTMLElement[] {
  const content = `/api/v1/volumes/${encodeURIComponent(volume.pool)}/${encodeURIComponent(volume.name)}/content`;
  return ["qcow2", "raw"].map((format) => h("a", { class: "button secondary", href: `${content}?format=${format}`,
    download: `${volume.name}.${format}`, "data-export": format,
    "aria-label": `Export ${volume.pool}/${volume.name} as ${format}` }, `Export ${format}`));
}

export function storagePage(main: HTMLElement): () => void {
  const pools = h("tbody");
  const volumes = h("tbody");
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const table = (caption: string, headings: string[], body: HTMLElement) => h("div", { class: "table-wrap" },
    h("table", { class: "list" }, h("caption", {}, caption),
      h("thead", {}, h("tr", {}, headings.map((title) => h("th", { scope: "col" }, title)))), body));

  const poolSelect = h("select", {});
  const pool = field("pool", "Pool", poolSelect);
  const name = field("name", "Name", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }));
  const size = field("size", "Size", h("input", { type: "text", value: "1G" }), "Like the CLI: 512M, 10G, 1.5T.");
  const fields = [pool, name, size];
  const create = h("form", { class: "card", "aria-labelledby": "new-volume-title" },
    h("h2", { id: "new-volume-title" }, "New volume"), fields.map((each) => each.wrapper),
    h("button", { type: "submit" }, "Create"));
  create.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(fields);
    try {
      await call("POST", "/api/v1/volumes", { pool: pool.input.value, name: name.input.value.trim(), size: size.input.value.trim() });
      status.textContent = `${pool.input.value}/${name.input.value} created`;
      name.input.value = "";
      void refresh();
    } catch (error) {
      if (!showAtField(fields, error)) status.textContent = (error as Error).message;
    }
  });

  fill(main, h("h1", {}, "Storage"), status,
    table("Pools", ["Name", "Driver", "Path", "Used", "Volumes"], pools),
    table("Volumes", ["Volume", "Format", "Size", "Allocated", "Backing", "Used by", "Actions"], volumes),
    h("div", { class: "grid" }, create, importForm(status, () => void refresh())));

  const clone = async (volume: Volume, linked: boolean) => {
    const target = window.prompt(`Name of the ${linked ? "linked clone" : "full copy"} of ${volume.pool}/${volume.name}`);
    if (!target) return;
    try {
      const answer = await call<Volume | { task: string }>("POST", "/api/v1/volumes",
        { pool: volume.pool, name: target, from: { pool: volume.pool, volume: volume.name }, linked });
      if ("task" in answer) {
        status.textContent = `copying ${volume.name} to ${target} (task ${answer.task}; progress on the Tasks page)`;
        const task: Task = await waitTask(answer.task);
        status.textContent = `${target}: ${task.status}`;
      } else {
        status.textContent = `${target} created`;
      }
      void refresh();
    } catch (error) {
      status.textContent = (error as Error).message;
    }
  };
  const remove = async (volume: Volume) => {
    if (!window.confirm(`Delete the volume ${volume.pool}/${volume.name}?`)) return;
    try {
      await call("DELETE", `/api/v1/volumes/${encodeURIComponent(volume.pool)}/${encodeURIComponent(volume.name)}`);
      status.textContent = `${volume.pool}/${volume.name} deleted`;
      void refresh();
    } catch (error) {
      status.textContent = (error as Error).message;
    }
  };

  const refresh = async () => {
    const [poolList, volumeList] = await Promise.all([get<Pool[]>("/api/v1/pools"), get<Volume[]>("/api/v1/volumes")]);
    if (poolSelect.options.length !== poolList.length)
      fill(poolSelect, poolList.map((each) => h("option", { value: each.name }, each.name)));
    fill(pools, poolList.map((each) => {
      const used = each.capacity_bytes - each.available_bytes;
      return h("tr", {}, h("th", { scope: "row" }, each.name), h("td", { "data-label": "Driver" }, each.driver),
        h("td", { "data-label": "Path" }, h("code", {}, each.path)),
        h("td", { "data-label": "Used" }, `${bytes(used)} of ${bytes(each.capacity_bytes)} `,
          h("meter", { min: 0, max: each.capacity_bytes, value: used, "aria-label": `${each.name} usage` })),
        h("td", { "data-label": "Volumes" }, each.volumes));
    }));
    fill(volumes, volumeList.length ? volumeList.map((volume) => h("tr", { "data-volume": `${volume.pool}/${volume.name}` },
      h("th", { scope: "row" }, `${volume.pool}/${volume.name}`), h("td", { "data-label": "Format" }, volume.format),
      h("td", { "data-label": "Size" }, bytes(volume.size_bytes)),
      h("td", { "data-label": "Allocated" }, bytes(volume.allocation_bytes)),
      h("td", { "data-label": "Backing" }, volume.backing ? `${volume.backing.pool}/${volume.backing.volume}` : "—"),
      h("td", { "data-label": "Used by" }, volume.used_by.join(", ") || "—"),
      h("td", { "data-label": "Actions" }, h("div", { class: "actions", role: "group", "aria-label": `Actions for ${volume.name}` },
        h("button", { type: "button", class: "secondary", onclick: () => void clone(volume, true) }, "Linked clone"),
        h("button", { type: "button", class: "secondary", onclick: () => void clone(volume, false) }, "Full copy"),
        exportLinks(volume),
        h("button", { type: "button", class: "danger", onclick: () => void remove(volume) }, "Delete")))))
      : h("tr", {}, h("td", { colspan: 7 }, "No volumes.")));
  };
  void refresh().catch((error) => (status.textContent = (error as Error).message));
  return () => {};
}
