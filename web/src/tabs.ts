// Tabs as the WAI-ARIA tabs pattern has them: one tab in the Tab order, arrow keys (and Home/End)
// move between them, each panel labelled by its tab.
import { h } from "./dom";

export interface TabView {
  id: string;
  label: string;
  element: HTMLElement;
}

export interface Tabs {
  /** The role=tablist element (put it in the card's heading). */
  list: HTMLElement;
  panels: HTMLElement[];
  open(index: number, focus?: boolean): void;
}

/** Tabs for `views`; `labelledBy` is the id of the heading that names them; `opened` runs on each switch. */
export function tabs(views: TabView[], labelledBy: string, opened: (id: string) => void = () => {}): Tabs {
  const buttons = views.map((view) => h("button", { type: "button", role: "tab", id: `tab-${view.id}`,
    "aria-controls": `panel-${view.id}`, "data-tab": view.id }, view.label));
  const panels = views.map((view) => h("div", { role: "tabpanel", id: `panel-${view.id}`,
    "aria-labelledby": `tab-${view.id}` }, view.element));
  const open = (index: number, focus = false) => {
    buttons.forEach((tab, i) => {
      tab.setAttribute("aria-selected", String(i === index));
      tab.tabIndex = i === index ? 0 : -1;
      panels[i].hidden = i !== index;
    });
    if (focus) buttons[index].focus();
    opened(views[index].id);
  };
  buttons.forEach((tab, index) => {
    tab.addEventListener("click", () => open(index));
    tab.addEventListener("keydown", (event) => {
      const last = buttons.length - 1;
      const to = event.key === "ArrowRight" ? (index + 1) % buttons.length
        : event.key === "ArrowLeft" ? (index + last) % buttons.length
        : event.key === "Home" ? 0 : event.key === "End" ? last : -1;
      if (to < 0) return;
      event.preventDefault();
      open(to, true);
    });
  });
  const list = h("div", { class: "tabs", role: "tablist", "aria-labelledby": labelledBy }, buttons);
  open(0);
  return { list, panels, open };
}
