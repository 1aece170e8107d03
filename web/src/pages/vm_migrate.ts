// The VM page's migration card: the Migrate form of a running VM (POST /vms/{name}/migrate: the
// destination's URL and token, how to trust its certificate, the downtime limit and bandwidth;
// errors at the field the API names), then the task's progress as it goes (phase, round, MiB sent
// and to go, an estimated downtime) and its final figures. A migration started elsewhere (the CLI,
// another browser) is found among the running tasks and followed the same way. Once the VM has
// moved this host no longer has it: movedAway() tells the page so, with the figures.
import { call, followTask, get, Task, Vm } from "../api";
import { fill, h } from "../dom";
import { clearErrors, field, Field, showAtField } from "../form";

/** The running vm.migrate task of each VM being migrated out of this host (the VM's own state
 *  stays "running" until the switch; the task is what says it is leaving). */
export async function migrationsOut(): Promise<Map<string, Task>> {
  const tasks = await get<Task[]>("/api/v1/tasks");
  const out = new Map<string, Task>();
  for (const task of tasks)
    if (task.kind === "vm.migrate" && (task.status === "running" || task.status === "queued")) out.set(task.target, task);
  return out;
}

/** Where a task is going: the https:// URL in its message ("copying memory to https://h2:8443"). */
export const destinationOf = (task: Task) =>
  /https:\/\/(\[[0-9a-fA-F:.]+\]|[^\s:/;]+)(:\d+)?/.exec(task.message ?? "")?.[0] ?? "";

/** The figures of a progress line: "copying memory: round 2, 100 MiB sent, 30 MiB to go". */
function progressFigures(message: string) {
  const found = /^(.*): round (\d+), (\d+) MiB sent, (\d+) MiB to go/.exec(message);
  return found ? { phase: found[1], round: Number(found[2]), sent: Number(found[3]), toGo: Number(found[4]) } : null;
}

/** The figures of a finished migration's message (docs/api.md "Migrations"): "web1 runs on
 *  https://h2:8443 now: 2345 ms in all, 12 ms downtime, 283115520 bytes in 3 rounds". */
export function finalFigures(message: string) {
  const found = /runs on (\S+) now: (\d+) ms in all, (\d+) ms downtime, (\d+) bytes in (\d+) rounds/.exec(message);
  return found ? { to: found[1], totalMs: Number(found[2]), downtimeMs: Number(found[3]), bytes: Number(found[4]),
    rounds: Number(found[5]) } : null;
}

function figureList(pairs: [string, string, string][]): HTMLElement {
  return h("dl", { class: "facts migration-figures" },
    pairs.flatMap(([key, label, value]) => [h("dt", {}, label), h("dd", { "data-figure": key }, value)]));
}

/** The page that says a VM left this host (its last vm.migrate task succeeded), or null. */
export async function movedAway(name: string): Promise<HTMLElement | null> {
  const tasks = await get<Task[]>("/api/v1/tasks").catch(() => [] as Task[]);
  const last = tasks.find((task) => task.kind === "vm.migrate" && task.target === name);
  const figures = last?.status === "succeeded" ? finalFigures(last.message) : null;
  if (!last || !figures) return null;
  return h("section", { class: "card migrated", "data-state": "migrated" }, h("h2", {}, `${name} moved to another host`),
    h("p", {}, last.message),
    figureList([["total", "In all", `${figures.totalMs} ms`], ["downtime", "Downtime", `${figures.downtimeMs} ms`],
      ["bytes", "Sent", `${(figures.bytes / 2 ** 20).toFixed(1)} MiB`], ["rounds", "Rounds", String(figures.rounds)]]),
    h("p", {}, h("a", { href: `${figures.to}/#/vms/${encodeURIComponent(name)}` }, `${name} on ${figures.to}`),
      " (its web UI, signed in there with a token of that host)"));
}

export class MigrateCard {
  readonly element: HTMLElement;
  private readonly status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  private readonly progressBox = h("div", { class: "migration-progress", hidden: true });
  private readonly form: HTMLFormElement;
  private readonly fields: Field[];
  private readonly to = field("to", "Destination", h("input", { type: "text", inputmode: "url", spellcheck: "false",
    autocomplete: "off", placeholder: "https://host2:8443" }), "The other corrald's TLS API. Disks on a pool both hosts share stay where they are; disks on a local pool are copied (emulated engine).");
  private readonly token = field("token", "Its token", h("input", { type: "password", autocomplete: "off" }),
    "A token of the destination: used for this migration only, never stored.");
  private readonly fingerprint = field("fingerprint", "Certificate fingerprint", h("input", { type: "text", spellcheck: "false",
    autocomplete: "off" }), "The SHA-256 its certificate must have (corral host info there). Or a CA below; else the system's CAs.");
  private readonly caCert = field("ca_cert_pem", "CA certificate (PEM)", h("textarea", { rows: 2, spellcheck: "false",
    placeholder: "-----BEGIN CERTIFICATE-----" }));
  private readonly downtime = field("downtime_ms", "Longest pause (ms)", h("input", { type: "number", min: 1, max: 60000,
    placeholder: "300" }), "1-60000; default 300.");
  private readonly bandwidth = field("bandwidth_mib", "Bandwidth (MiB/s)", h("input", { type: "number", min: 1, max: 100000,
    placeholder: "128" }), "1-100000; default 128 (emulated engine).");
  private following = "";
  private wanted = false;
  private downtimeLimit: number | null = null;

  constructor(private readonly vm: string, private readonly onEnd: () => void) {
    // The CA's text box last: it takes a whole row.
    this.fields = [this.to, this.token, this.fingerprint, this.downtime, this.bandwidth, this.caCert];
    const submit = h("button", { type: "submit", "data-action": "start-migration" }, "Migrate");
    const cancel = h("button", { type: "button", class: "secondary", onclick: () => this.close() }, "Cancel");
    // novalidate: the API judges every value and names the field (the browser's bubbles would not).
    this.form = h("form", { class: "migrate-form", "aria-label": `Migrate ${vm}`, novalidate: true },
      h("div", { class: "fields-row" }, this.fields.map((each) => each.wrapper)),
      h("p", { class: "help" }, "The guest runs on while its memory is copied; it pauses for at most the longest pause at the ",
        "switch. Any failure before the switch leaves it running here."),
      h("div", { class: "actions" }, submit, cancel));
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      void this.start(submit);
    });
    this.element = h("section", { class: "card wide migrate-view", "aria-labelledby": "migrate-title", hidden: true },
      h("h2", { id: "migrate-title", tabindex: "-1" }, "Migrate to another host"), this.status, this.progressBox, this.form);
  }

  /** The Migrate button: shows the form, its first field focused. */
  open(): void {
    this.wanted = true;
    this.element.hidden = this.form.hidden = false;
    this.to.input.focus();
  }

  private close(): void {
    this.wanted = false;
    if (!this.following) this.element.hidden = true;
  }

  /** Each new look at the VM, with its running vm.migrate task if it has one. */
  update(vm: Vm, task: Task | undefined): void {
    if (task && !this.following) void this.follow(task.id);
    if (vm.state !== "running" && !this.following) {
      this.form.hidden = true;
      if (this.wanted) this.status.textContent = `${this.vm} is ${vm.state}: only a running VM migrates.`;
    }
  }

  private async start(submit: HTMLButtonElement): Promise<void> {
    clearErrors(this.fields);
    const body: Record<string, unknown> = { to: this.to.input.value.trim(), token: this.token.input.value };
    for (const each of [this.fingerprint, this.caCert]) if (each.input.value.trim()) body[each.api] = each.input.value.trim();
    for (const each of [this.downtime, this.bandwidth]) if (each.input.value !== "") body[each.api] = Number(each.input.value);
    this.downtimeLimit = Number(body.downtime_ms ?? 300);
    submit.disabled = true;
    try {
      const answer = await call<{ task: string }>("POST", `/api/v1/vms/${encodeURIComponent(this.vm)}/migrate`, body);
      this.token.input.value = "";  // the browser keeps no copy either
      await this.follow(answer.task);
    } catch (error) {
      if (!showAtField(this.fields, error)) this.status.textContent = `migrate ${this.vm}: ${(error as Error).message}`;
    } finally {
      submit.disabled = false;
    }
  }

  /** Shows the task's steps until it ends, then its figures or its error. */
  private async follow(id: string): Promise<void> {
    this.following = id;
    this.element.hidden = false;
    this.form.hidden = true;
    this.progressBox.hidden = false;
    this.element.dataset.state = "migrating";
    const bar = h("progress", { max: 1, value: 0, "aria-label": `Migration of ${this.vm}` });
    const step = h("p", { class: "migration-step" });
    const figures = h("div");
    fill(this.progressBox, bar, step, figures);
    let last: { at: number; sent: number } | null = null;
    let rate = 0;  // MiB/s, from the last two looks
    let where = "";  // named by the first steps ("checking https://..."), not by the progress lines
    try {
      const task = await followTask(id, (now) => {
        bar.value = now.progress;
        step.textContent = now.message || now.status;
        where = destinationOf(now) || where;
        this.status.textContent = `${this.vm}: migrating${where ? ` to ${where}` : ""}`;
        const seen = progressFigures(now.message ?? "");
        if (!seen) return;
        const at = performance.now();
        if (last && seen.sent > last.sent && at > last.at) rate = (seen.sent - last.sent) / ((at - last.at) / 1000);
        last = { at, sent: seen.sent };
        // As QEMU reckons it: what is left of this round at the rate the stream goes now.
        const estimate = rate > 0 ? `≈ ${Math.round((seen.toGo / rate) * 1000)} ms at ${rate.toFixed(0)} MiB/s` : "—";
        fill(figures, figureList([["phase", "Phase", seen.phase], ["round", "Round", String(seen.round)],
          ["sent", "Sent", `${seen.sent} MiB`], ["remaining", "To go", `${seen.toGo} MiB`],
          ["estimated-downtime", "Estimated downtime", estimate + (this.downtimeLimit ? ` (limit ${this.downtimeLimit} ms)` : "")]]));
      });
      bar.value = 1;
      this.element.dataset.state = "migrated";
      this.status.textContent = task.message;
      const done = finalFigures(task.message);
      if (done)
        fill(figures, figureList([["total", "In all", `${done.totalMs} ms`], ["downtime", "Downtime", `${done.downtimeMs} ms`],
          ["bytes", "Sent", `${(done.bytes / 2 ** 20).toFixed(1)} MiB`], ["rounds", "Rounds", String(done.rounds)]]));
    } catch (error) {
      // The task's own words: why, and that the VM runs on here.
      this.element.dataset.state = "failed";
      this.progressBox.hidden = true;
      this.status.textContent = `migrate ${this.vm} failed: ${(error as Error).message}`;
      this.form.hidden = false;
    } finally {
      this.following = "";
      this.onEnd();
    }
  }
}
