// The event stream (GET /api/v1/events, a WebSocket): reconnects while the page wants it.
import { socketUrl } from "./api";

export interface CorralEvent {
  time?: string;
  kind: string;
  target?: string;
  state?: string;
  reason?: string;
  task?: { id: string; kind: string; target: string; status: string };
}

/** Calls `handler` with every event until the returned function is called. */
export function subscribeEvents(handler: (event: CorralEvent) => void): () => void {
  let socket: WebSocket | undefined;
  let stopped = false;
  let retry: number | undefined;
  const open = () => {
    socket = new WebSocket(socketUrl("/api/v1/events"));
    socket.onmessage = (message) => {
      try {
        handler(JSON.parse(String(message.data)) as CorralEvent);
      } catch {
        // not JSON: not an event
      }
    };
    socket.onclose = () => {
      if (!stopped) retry = window.setTimeout(open, 3000);
    };
  };
  open();
  return () => {
    stopped = true;
    if (retry !== undefined) clearTimeout(retry);
    socket?.close();
  };
}

/** One line for a human: "12:03:04 vm.state web1 running (started on the emulated engine)". */
export function describeEvent(event: CorralEvent): string {
  const time = event.time ? new Date(event.time).toLocaleTimeString() : "";
  if (event.kind === "task" && event.task)
    return `${time} task ${event.task.id} ${event.task.kind} ${event.task.target}: ${event.task.status}`;
  const parts = [time, event.kind, event.target, event.state, event.reason ? `(${event.reason})` : ""];
  return parts.filter(Boolean).join(" ");
}
