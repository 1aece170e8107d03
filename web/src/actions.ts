// VM actions as the CLI runs them: PUT /vms/{name}/state, then wait for the task.
import { call, waitTask } from "./api";
import { h } from "./dom";

/** The actions that make sense in `state` (the API says 409 for the others anyway). */
export function actionsFor(state: string): string[] {
  switch (state) {
    case "running": return ["stop", "reboot", "pause", "kill", "reset"];
    case "paused": return ["resume", "stop", "kill"];
    case "starting": case "stopping": return ["kill"];
    case "migrating-in": return [];  // arriving from another host: no action applies until it runs
    default: return ["start"];
  }
}

export async function runAction(name: string, action: string): Promise<void> {
  const answer = await call<{ task: string }>("PUT", `/api/v1/vms/${encodeURIComponent(name)}/state`, { action });
  await waitTask(answer.task);
}

/** Buttons for `actionsFor(state)`; `status` says what happened, `done` runs after each. */
export function actionButtons(name: string, state: string, status: HTMLElement, done: () => void): HTMLElement {
  return h("div", { class: "actions", role: "group", "aria-label": `Actions for ${name}` },
    actionsFor(state).map((action) => h("button", {
      type: "button",
      class: action === "kill" || action === "reset" ? "danger" : action === "start" ? "" : "secondary",
      "data-action": action,
      onclick: async (event: Event) => {
        const button = event.currentTarget as HTMLButtonElement;
        button.disabled = true;
        status.textContent = `${name}: ${action}…`;
        try {
          await runAction(name, action);
          status.textContent = `${name}: ${action} done`;
        } catch (error) {
          status.textContent = `${name}: ${action} failed: ${(error as Error).message}`;
        } finally {
          button.disabled = false;
          done();
        }
      },
    }, action[0].toUpperCase() + action.slice(1))));
}
