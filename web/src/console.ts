// The serial console in the page: xterm.js over the console WebSocket (binary frames both ways;
// text frames are corrald's notes: where the scroll-back ends, input dropped, read-only viewer).
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";
import { socketUrl } from "./api";
import { h } from "./dom";

export class ConsoleView {
  readonly element: HTMLElement;
  private readonly terminal: Terminal;
  private readonly fit = new FitAddon();
  private socket: WebSocket | undefined;
  private readonly note: HTMLElement;
  private readonly observer: ResizeObserver;
  private closed = false;

  constructor(private readonly vm: string) {
    this.terminal = new Terminal({ convertEol: false, scrollback: 5000, fontSize: 14, cursorBlink: true,
      screenReaderMode: false });
    this.terminal.loadAddon(this.fit);
    const screen = h("div", { class: "terminal", "aria-label": `Serial console of ${vm}` });
    this.note = h("p", { class: "help console-note", role: "status" });
    this.element = h("div", { class: "console" }, screen, this.note);
    this.terminal.open(screen);
    this.observer = new ResizeObserver(() => {
      try {
        this.fit.fit();
      } catch {
        // not laid out yet
      }
    });
    this.observer.observe(screen);
    this.terminal.onData((data) => {
      if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(new TextEncoder().encode(data));
    });
    this.connect();
  }

  private connect(): void {
    const socket = new WebSocket(socketUrl(`/api/v1/vms/${encodeURIComponent(this.vm)}/console`));
    socket.binaryType = "arraybuffer";
    socket.onmessage = (message) => {
      if (typeof message.data === "string") this.note.textContent = message.data;
      else this.terminal.write(new Uint8Array(message.data as ArrayBuffer));
    };
    socket.onclose = () => {
      if (this.closed) return;
      this.note.textContent = "The console connection ended; reconnecting…";
      window.setTimeout(() => {
        if (!this.closed) {
          this.terminal.reset();
          this.connect();
        }
      }, 3000);
    };
    this.socket = socket;
  }

  /** Connects again (after the VM started): the scroll-back and corrald's note come afresh. */
  reconnect(): void {
    if (this.socket) {
      this.socket.onclose = null;
      this.socket.close();
    }
    this.terminal.reset();
    this.connect();
  }

  focus(): void {
    this.terminal.focus();
  }

  destroy(): void {
    this.closed = true;
    this.observer.disconnect();
    this.socket?.close();
    this.terminal.dispose();
  }
}
