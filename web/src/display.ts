// The VM's `display` setting in the wizard and the settings form: a screen size from a list (the
// CLI's `--display WIDTHxHEIGHT` takes any size the API allows), or none.
import { Vm } from "./api";
import { h } from "./dom";
import { Field, field } from "./form";

const sizes = ["800x600", "1024x768", "1280x800", "1280x1024", "1920x1080"];

/** "1024x768", or "none" when there is no display. */
export function displayText(display: Vm["display"]): string {
  return display ? `${display.width}x${display.height}` : "none";
}

/** What the API takes for a displayText(): {"width", "height"}, or null. */
export function displayValue(text: string): Vm["display"] {
  const [width, height] = text.split("x").map(Number);
  return text === "none" ? null : { width, height };
}

/** A select of sizes (the VM's own first when it is not in the list). */
export function displayField(current: Vm["display"]): Field {
  const now = displayText(current);
  const options = ["none", ...sizes.includes(now) || now === "none" ? [] : [now], ...sizes];
  return field("display", "Display", h("select", {},
    options.map((value) => h("option", { value, selected: value === now }, value === "none" ? "None (serial console only)" : value))),
  "A screen, keyboard and pointer: the VM page's Screen tab and `corral vm vnc` show it.");
}
