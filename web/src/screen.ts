// The graphical console in the page: noVNC over corrald's WebSocket relay of the VM's VNC
// (GET /vms/{name}/vnc, the session cookie; ?view_only=1 makes corrald drop this viewer's input),
// scaled to fit, with send-keys and paste-as-typing. It connects only while it is shown and the
// VM runs with a display; the page tells it the VM's state (update) and whether it is shown.
// noVNC is a chunk of its own, loaded on the first connection: other pages do not wait for it.
import type RFB from "@novnc/novnc";
import { socketUrl, Vm } from "./api";
import { h } from "./dom";
import { combos, Key, strokes } from "./keys";

/** What paste-as-typing types at most: a command or a short script, not a file transfer. */
export const k_max_typed = 2000;
/** The pause between two typed characters: QEMU and guests drop keys that come faster. */
const k_type_interval_ms = 10;

/** Where the view is: its element's data-state (the browser test waits for "connected"). */
export type ScreenState = "idle" | "no-display" | "not-running" | "connecting" | "connected" | "disconnected";

export class ScreenView {
  readonly element: HTMLElement;
  private rfb: RFB | undefined;
  private vm: Vm | undefined;
  private shown = false;
  private closed = false;
  private viewOnly = false;
  private retry: number | undefined;
  /** Bumped to stop a paste-as-typing in progress (disconnect, another paste). */
  private typing = 0;
  /** Bumped by each connect and disconnect: a noVNC chunk that loads late opens nothing stale. */
  private attempts = 0;
  private readonly area: HTMLElement;
  private readonly message: HTMLElement;
  private readonly note: HTMLElement;
  private readonly viewOnlyBox: HTMLInputElement;
  private readonly comboSelect: HTMLSelectElement;
  private readonly text: HTMLTextAreaElement;
  private readonly controls: HTMLButtonElement[];

  constructor(private readonly name: string) {
    const id = (part: string) => `screen-${part}`;
    this.area = h("div", { class: "screen-area", "aria-label": `Screen of ${name}` });
    this.message = h("p", { class: "screen-message" });
    this.note = h("p", { class: "help console-note", role: "status" });
    this.viewOnlyBox = h("input", { type: "checkbox", id: id("view-only") });
    this.viewOnlyBox.addEventListener("change", () => {
      this.viewOnly = this.viewOnlyBox.checked;
      this.reconnect();
    });
    this.comboSelect = h("select", { id: id("keys") }, combos.map((combo, i) => h("option", { value: i }, combo.label)));
    const send = h("button", { type: "button", class: "secondary", "data-action": "send-keys",
      onclick: () => this.sendCombo(combos[Number(this.comboSelect.value)].keys) }, "Send");
    this.text = h("textarea", { id: id("text"), rows: 2, maxlength: k_max_typed, spellcheck: "false",
      "aria-describedby": id("text-help") });
    const type = h("button", { type: "submit", class: "secondary" }, "Type it");
    const typeForm = h("form", { class: "screen-type" },
      h("label", { for: id("text") }, "Paste as typing"), this.text,
      h("p", { id: id("text-help"), class: "help" },
        `Typed into the VM key by key (US keyboard), up to ${k_max_typed} characters; a line break is Enter.`),
      type);
    typeForm.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.typeText(this.text.value);
    });
    const full = h("button", { type: "button", class: "secondary", onclick: () => void this.area.requestFullscreen?.() },
      "Full screen");
    const shot = h("a", { class: "button secondary", href: `/api/v1/vms/${encodeURIComponent(name)}/screenshot`,
      download: `${name}.png` }, "Screenshot");
    this.controls = [send, type];
    const toolbar = h("div", { class: "screen-toolbar" },
      h("div", { class: "check" }, this.viewOnlyBox, h("label", { for: id("view-only") }, "View only")),
      h("div", { class: "keys" }, h("label", { for: id("keys") }, "Send keys"), this.comboSelect, send),
      full, shot);
    this.element = h("div", { class: "screen", "data-state": "idle" },
      toolbar, h("div", { class: "screen-frame" }, this.area, this.message), this.note, typeForm);
    this.setState("idle", "");
  }

  /** The VM as the page last read it: connects, or says why not. */
  update(vm: Vm): void {
    const before = this.vm;
    this.vm = vm;
    if (vm.display) this.area.style.aspectRatio = `${vm.display.width} / ${vm.display.height}`;
    // A VM that came to run: connect now rather than at the next retry.
    if (before && !live(before) && live(vm)) this.clearRetry();
    this.sync();
  }

  /** Shown (the Screen tab is open) or hidden: a hidden view holds no connection. */
  show(shown: boolean): void {
    this.shown = shown;
    this.sync();
  }

  destroy(): void {
    this.closed = true;
    this.clearRetry();
    this.disconnect();
  }

  private sync(): void {
    if (this.closed) return;
    const vm = this.vm;
    if (!vm) return;
    if (!vm.display) {
      this.disconnect();
      return this.setState("no-display", `This VM has no display: corral vm edit ${this.name} --display 1024x768 ` +
        "while it is stopped (or choose a display in its settings), then start it.");
    }
    if (!live(vm)) {
      this.disconnect();
      return this.setState("not-running", `${this.name} is ${vm.state}: its screen shows while it runs.`);
    }
    if (!this.shown) {
      this.disconnect();
      return this.setState("idle", "");
    }
    if (!this.rfb && this.retry === undefined) this.connect();
  }

  private connect(): void {
    const attempt = ++this.attempts;
    this.setState("connecting", this.viewOnly ? "Connecting (view only)…" : "Connecting…");
    import("@novnc/novnc").then(({ default: Rfb }) => {
      // Still wanted: nothing disconnected, retried or closed the view while the chunk loaded.
      if (attempt === this.attempts && !this.closed && !this.rfb) this.open(Rfb);
    }, (error) => this.setState("disconnected", "The screen's code did not load (corrald may have been updated since " +
      `this page was opened): reload the page. ${(error as Error).message}`));
  }

  private open(Rfb: typeof RFB): void {
    const query = this.viewOnly ? "?view_only=1" : "";
    const rfb = new Rfb(this.area, socketUrl(`/api/v1/vms/${encodeURIComponent(this.name)}/vnc${query}`),
      { shared: true });
    rfb.scaleViewport = true;
    rfb.resizeSession = false;
    rfb.viewOnly = this.viewOnly;
    rfb.background = "#000";
    rfb.addEventListener("connect", () => {
      if (rfb !== this.rfb) return;
      const canvas = this.area.querySelector("canvas");
      const size = canvas ? `${canvas.width}x${canvas.height}` : "";
      this.setState("connected", this.viewOnly ? `Connected, view only (${size}): your keys and pointer do not reach the VM.`
        : `Connected (${size}). Click the screen to type into it; the keys go to the VM while it has the focus.`);
    });
    rfb.addEventListener("securityfailure", (event) => {
      if (rfb === this.rfb) this.note.textContent = `The VM's VNC refused the connection: ${event.detail.reason ?? event.detail.status}`;
    });
    rfb.addEventListener("disconnect", () => {
      if (rfb !== this.rfb) return;
      this.rfb = undefined;
      this.typing++;
      if (this.closed) return;
      this.setState("disconnected", `The screen's connection ended; connecting again…`);
      // corrald refuses a VM that stopped or has no display; the page's next update says which.
      this.retry = window.setTimeout(() => {
        this.retry = undefined;
        this.sync();
      }, 3000);
    });
    this.rfb = rfb;
  }

  private disconnect(): void {
    this.attempts++;
    const rfb = this.rfb;
    this.rfb = undefined;
    this.typing++;
    rfb?.disconnect();
  }

  private reconnect(): void {
    this.disconnect();
    this.clearRetry();
    this.sync();
  }

  private clearRetry(): void {
    if (this.retry !== undefined) window.clearTimeout(this.retry);
    this.retry = undefined;
  }

  private setState(state: ScreenState, text: string): void {
    this.element.dataset.state = state;
    this.note.textContent = text;
    // Over the black screen, only while there is no picture.
    this.message.textContent = state === "connected" ? "" : text;
    this.message.hidden = state === "connected";
    const usable = state === "connected" && !this.viewOnly;
    for (const control of this.controls) control.disabled = !usable;
  }

  /** Sends a combination (Ctrl-Alt-Del and friends); the screen gets the focus back. */
  private sendCombo(keys: Key[]): void {
    if (!this.rfb || this.viewOnly) return;
    press(this.rfb, keys);
    this.rfb.focus();
  }

  /** Types `text` key by key, a little apart; stops when the connection goes or another paste starts. */
  private async typeText(text: string): Promise<void> {
    const rfb = this.rfb;
    if (!rfb || this.viewOnly) return;
    const characters = [...text];
    if (characters.length > k_max_typed) {
      this.note.textContent = `Paste as typing takes up to ${k_max_typed} characters; this text has ${characters.length}.`;
      return;
    }
    const run = ++this.typing;
    for (const [index, character] of characters.entries()) {
      if (run !== this.typing || rfb !== this.rfb) {
        this.note.textContent = `Typing stopped after ${index} of ${characters.length} characters.`;
        return;
      }
      press(rfb, strokes(character));
      if (index % 50 === 0) this.note.textContent = `Typing: ${index} of ${characters.length} characters…`;
      await new Promise((resolve) => window.setTimeout(resolve, k_type_interval_ms));
    }
    this.note.textContent = `Typed ${characters.length} characters.`;
    this.element.dataset.typed = String(Number(this.element.dataset.typed ?? 0) + 1);
  }
}

/** Presses `keys` in order and lets them go in reverse. */
function press(rfb: RFB, keys: Key[]): void {
  for (const each of keys) rfb.sendKey(each.keysym, each.code, true);
  for (const each of [...keys].reverse()) rfb.sendKey(each.keysym, each.code, false);
}

const live = (vm: Vm) => vm.state === "running" || vm.state === "paused";
