// The Storage page's import: a qcow2 or raw disk image from this computer becomes a new volume
// (PUT /volumes/{pool}/{name}/content, streamed; corrald checks the image before keeping it).
// The bar follows the upload's progress events; the API's errors appear at the field it names
// (`name`: taken or not valid; `body`: not an image it takes; `Content-Length`: too large).
import { ApiError, get, Pool, Volume } from "../api";
import { bytes, h } from "../dom";
import { clearErrors, field, showAtField } from "../form";
import { upload } from "../upload";

/** The form; `status` tells what happened, `done` runs after an import. */
export function importForm(status: HTMLElement, done: () => void): HTMLElement {
  const poolSelect = h("select", {});
  const pool = field("pool", "Pool", poolSelect);
  void get<Pool[]>("/api/v1/pools").then((list) => poolSelect.replaceChildren(...list.map((each) => h("option", { value: each.name }, each.name))))
    .catch(() => {});
  const file = field("body", "Disk image", h("input", { type: "file", accept: ".qcow2,.img,.raw" }),
    "A qcow2 (standing alone: no backing file) or raw image. Other formats: qemu-img convert -O qcow2 first.");
  const name = field("name", "Volume name", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }),
    "Empty: the file's name without its extension.");
  const fields = [pool, file, name];
  const bar = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
  const progressText = h("p", { class: "help upload-progress", "aria-live": "polite" });
  const submit = h("button", { type: "submit" }, "Import");
  const form = h("form", { class: "card upload-form", "aria-labelledby": "import-title" },
    h("h2", { id: "import-title" }, "Import a disk image"), fields.map((each) => each.wrapper), submit, bar, progressText);
  file.input.addEventListener("change", () => {
    const chosen = (file.input as HTMLInputElement).files?.[0];
    if (chosen && !name.input.value) name.input.value = chosen.name.replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9_.-]/g, "-");
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(fields);
    const chosen = (file.input as HTMLInputElement).files?.[0];
    if (!chosen) {
      file.error.textContent = "Choose a disk image file.";
      file.input.focus();
      return;
    }
    const target = name.input.value.trim();
    submit.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    try {
      const volume = await upload<Volume>(`/api/v1/volumes/${encodeURIComponent(pool.input.value)}/${encodeURIComponent(target)}/content`,
        chosen, (sent, total) => {
          bar.value = total ? sent / total : 0;
          form.dataset.sent = String(sent); // what the browser reported sent (the UI test reads it)
          progressText.textContent = `${bytes(sent)} of ${bytes(total)} sent`;
        });
      status.textContent = `${volume.pool}/${volume.name} imported (${volume.format}, ${bytes(volume.size_bytes)})`;
      progressText.textContent = "";
      name.input.value = "";
      (file.input as HTMLInputElement).value = "";
      done();
    } catch (error) {
      progressText.textContent = "";
      // Too large for corrald (413) or the pool (507) names Content-Length: that is the file's size.
      const shown = error instanceof ApiError && error.field === "Content-Length"
        ? new ApiError(error.status, "body", error.message) : error;
      if (!showAtField(fields, shown)) status.textContent = `import: ${(error as Error).message}`;
    } finally {
      submit.disabled = false;
      bar.hidden = true;
    }
  });
  return form;
}
