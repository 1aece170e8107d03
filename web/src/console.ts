// The serial console in the page: xterm.js over the console WebSocket (binary frames both ways;
// text frames are corrald's notes: where the scroll-back ends, input dropped, read-only viewer).
// xterm.js is a chunk of its own (lazy.ts), loaded when the first console opens: until then the
// card shows the console's black box and "Loading the console…", and if it cannot load, why.
import type { Terminal } from "./lazy/xterm";
import { socketUrl } from "./api";
import { fill, h } from "./dom";
import { chunkFailed, lazyChunk } from "./lazy";

const loadXterm = lazyChunk(() => import("./lazy/xterm"));

/** Where the view is: its element's data-state (the browser test reads it). */
export type ConsoleState = "loading" | "ready" | "failed";

export class ConsoleView {
  readonly element: HTMLElement;
  private terminal: Terminal | undefined;
  private socket: WebSocket | undefined;
  private readonly note: HTMLElement;
  private observer: ResizeObserver | undefined;
  private closed = false;
  private wantsFocus = false;

  constructor(private readonly vm: string) {
    const screen = h("div", { class: "terminal", "aria-label": `Serial console of ${vm}` });
    this.note = h("p", { class: "help console-note", role: "status" }, "Loading the console…");
    this.element = h("div", { class: "console", "data-state": "loading" }, screen, this.note);
    loadXterm().then((xterm) => {
      if (!this.closed) this.open(xterm, screen);
    }, (error: unknown) => {
      if (this.closed) return;
      this.element.dataset.state = "failed";
      fill(this.note, chunkFailed("console", error));
    });
  }

  private open(xterm: typeof import("./lazy/xterm"), screen: HTMLElement): void {
    const terminal = new xterm.Terminal({ convertEol: false, scrollback: 5000, fontSize: 14, cursorBlink: true,
      screenReaderMode: false });
    const fit = new xterm.FitAddon();
    terminal.loadAddon(fit);
    this.note.textContent = "";
    terminal.open(screen);
    this.observer = new ResizeObserver(() => {
      try {
        fit.fit();
      } catch {
        // not laid out yet
      }
    });
    this.observer.observe(screen);
    terminal.onData((data) => {
      if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(new TextEncoder().encode(data));
    });
    this.terminal = terminal;
    this.element.dataset.state = "ready";
    this.connect();
    if (this.wantsFocus) terminal.focus();
  }

  private connect(): void {
    const terminal = this.terminal!;
    const socket = new WebSocket(socketUrl(`/api/v1/vms/${encodeURIComponent(this.vm)}/console`));
    socket.binaryType = "arraybuffer";
    socket.onmessage = (message) => {
      if (typeof message.data === "string") this.note.textContent = message.data;
      else terminal.write(new Uint8Array(message.data as ArrayBuffer));
    };
    socket.onclose = () => {
      if (this.closed) return;
      this.note.textContent = "The console connection ended; reconnecting…";
      window.setTimeout(() => {
        if (!this.closed) {
          terminal.reset();
          this.connect();
        }
      }, 3000);
    };
    this.socket = socket;
  }

  /** Connects again (after the VM started): the scroll-back and corrald's note come afresh. */
  reconnect(): void {
    // Not loaded yet: it connects when it is.
    if (!this.terminal) return;
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
    }
    this.terminal.reset();
    this.connect();
  }

  focus(): void {
    this.wantsFocus = !this.terminal;
    this.terminal?.focus();
  }

  destroy(): void {
    this.closed = true;
    this.observer?.disconnect();
    this.socket?.close();
    this.terminal?.dispose();
  }
}
