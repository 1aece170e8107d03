// Form fields whose errors appear at the field: the API names the field it refuses
// ({"error": {"field": "memory_mib", ...}}), and the page puts the message under that input.
import { ApiError } from "./api";
import { h } from "./dom";

export interface Field {
  /** The API's name for it ("memory_mib", "disks[0].volume" is matched by its start). */
  api: string;
  input: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;
  error: HTMLElement;
  wrapper: HTMLElement;
}

let counter = 0;

/** A labelled input with its help text and a place for its error. */
export function field(api: string, label: string, input: Field["input"], help?: string): Field {
  const id = `f-${api.replace(/[^a-z0-9]/gi, "-")}-${++counter}`;
  input.id = id;
  input.name = api;
  const error = h("p", { id: `${id}-error`, class: "field-error", "aria-live": "polite" });
  const helpText = help ? h("p", { id: `${id}-help`, class: "help" }, help) : null;
  input.setAttribute("aria-describedby", [helpText ? `${id}-help` : "", `${id}-error`].filter(Boolean).join(" "));
  const wrapper = h("div", { class: "field", "data-field": api }, h("label", { for: id }, label), input, helpText, error);
  return { api, input, error, wrapper };
}

export function clearErrors(fields: Field[]): void {
  for (const each of fields) {
    each.error.textContent = "";
    each.input.removeAttribute("aria-invalid");
  }
}

/** Shows `error` at the field it names (true), or returns false when it names none of them. */
export function showAtField(fields: Field[], error: unknown): boolean {
  if (!(error instanceof ApiError) || !error.field) return false;
  const name = error.field;
  const target = fields.find((each) => each.api === name) ??
    fields.find((each) => name.startsWith(`${each.api}[`) || name.startsWith(`${each.api}.`));
  if (!target) return false;
  target.error.textContent = error.message;
  target.input.setAttribute("aria-invalid", "true");
  target.input.focus();
  return true;
}
