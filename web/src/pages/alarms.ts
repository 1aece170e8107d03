// Alarms: the threshold rules corrald judges on every metrics sample (GET /alarms), each with its
// state and the VMs (or the host) it has measured: ok, pending (breached, not yet for long enough)
// or firing, with the value. Making a rule (the API's error at the field it names) and deleting
// one. The page follows alarm.firing and alarm.resolved events, so a rule turns red as it fires.
import { Alarm, AlarmTarget, call, get } from "../api";
import { fill, h } from "../dom";
import { subscribeEvents } from "../events";
import { clearErrors, field, showAtField } from "../form";

/** The metrics the API takes (docs/api.md "Alarms"), with how a value of each reads. */
const metrics: [string, string, (value: number) => string][] = [
  ["vm.cpu", "CPUs used by a VM", (v) => `${v.toFixed(2)} CPUs`],
  ["vm.memory", "memory resident (bytes)", (v) => mib(v)],
  ["vm.disk_read", "disk reads (bytes/s)", (v) => `${mib(v)}/s`],
  ["vm.disk_write", "disk writes (bytes/s)", (v) => `${mib(v)}/s`],
  ["vm.net_rx", "network received (bytes/s)", (v) => `${mib(v)}/s`],
  ["vm.net_tx", "network sent (bytes/s)", (v) => `${mib(v)}/s`],
  ["vm.run_delay", "time its vCPUs waited for a host CPU (0..1)", (v) => `${(v * 100).toFixed(1)}%`],
  ["vm.disk_write_latency", "ms per disk write", (v) => `${v.toFixed(1)} ms`],
  ["host.cpu", "host CPUs busy (0..1)", (v) => `${(v * 100).toFixed(1)}%`],
  ["host.memory", "host memory used (bytes)", (v) => mib(v)],
];

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

function shown(metric: string, value: number): string {
  return metrics.find(([name]) => name === metric)?.[2](value) ?? String(value);
}

const alarmPath = (name: string) => `/api/v1/alarms/${encodeURIComponent(name)}`;

/** "vm.cpu of web1 above 0.8 for 60 s" */
function ruleText(alarm: Alarm): string {
  const threshold = alarm.above !== null ? `above ${alarm.above}` : `below ${alarm.below}`;
  const of = alarm.metric.startsWith("host.") ? "" : ` of ${alarm.vm ?? "every VM"}`;
  return `${alarm.metric}${of} ${threshold}${alarm.for_seconds ? ` for ${alarm.for_seconds} s` : ""}`;
}

function targetItem(alarm: Alarm, target: AlarmTarget): HTMLElement {
  const since = target.firing_since ?? target.breached_since;
  return h("li", { "data-target": target.target, "data-state": target.state },
    h("span", { class: `badge alarm-${target.state}` }, target.state), " ", h("strong", {}, target.target), ": ",
    h("span", { class: "alarm-value" }, shown(alarm.metric, target.value)),
    since ? h("span", { class: "help" }, ` (since ${since.replace("T", " ")})`) : null);
}

export function alarmsPage(main: HTMLElement): () => void {
  const status = h("p", { class: "status", role: "status", "aria-live": "polite" });
  const body = h("tbody");

  const name = field("name", "Name", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }),
    "Lowercase letters, digits and '-', starting with a letter.");
  const metric = field("metric", "Metric", h("select", {}, metrics.map(([value, label]) =>
    h("option", { value }, `${value}: ${label}`))));
  const vm = field("vm", "VM", h("input", { type: "text", autocomplete: "off", spellcheck: "false" }),
    "Empty: every VM that runs, each on its own. Host metrics take none.");
  const direction = field("direction", "When it is", h("select", {}, h("option", { value: "above" }, "above"),
    h("option", { value: "below" }, "below")));
  const threshold = field("above", "Threshold", h("input", { type: "number", step: "any", required: true }),
    "In the metric's own unit (CPUs, bytes, bytes/s, a fraction, ms).");
  const duration = field("for_seconds", "For (seconds)", h("input", { type: "number", min: 0, max: 604800, value: "0" }),
    "How long it must hold before the alarm fires; 0: at the first sample.");
  const webhook = field("webhook", "Webhook", h("input", { type: "url", spellcheck: "false", placeholder: "https://hooks.example.com/corral" }),
    "Optional: corrald POSTs each firing and resolved event there.");
  const fields = [name, metric, vm, direction, threshold, duration, webhook];
  const showVm = () => (vm.wrapper.hidden = metric.input.value.startsWith("host."));
  metric.input.addEventListener("change", showVm);
  showVm();
  const form = h("form", { class: "card alarm-form", "aria-labelledby": "new-alarm-title" },
    h("h2", { id: "new-alarm-title" }, "New alarm"), fields.map((each) => each.wrapper), h("button", { type: "submit" }, "Create"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(fields);
    // The threshold's field answers to whichever of above/below the API names.
    threshold.api = direction.input.value;
    const rule: Record<string, unknown> = { name: name.input.value.trim(), metric: metric.input.value,
      [direction.input.value]: Number(threshold.input.value), for_seconds: Number(duration.input.value || 0) };
    if (!vm.wrapper.hidden && vm.input.value.trim()) rule.vm = vm.input.value.trim();
    if (webhook.input.value.trim()) rule.webhook = webhook.input.value.trim();
    try {
      const made = await call<Alarm>("POST", "/api/v1/alarms", rule);
      status.textContent = `alarm ${made.name} created: ${ruleText(made)}`;
      name.input.value = threshold.input.value = webhook.input.value = "";
      void refresh();
    } catch (error) {
      if (!showAtField(fields, error)) status.textContent = (error as Error).message;
    }
  });

  const remove = async (alarm: Alarm) => {
    if (!window.confirm(`Delete the alarm ${alarm.name}?`)) return;
    try {
      await call("DELETE", alarmPath(alarm.name));
      status.textContent = `alarm ${alarm.name} deleted`;
    } catch (error) {
      status.textContent = `delete ${alarm.name}: ${(error as Error).message}`;
    }
    void refresh();
  };

  const row = (alarm: Alarm) => h("tr", { "data-alarm": alarm.name, "data-state": alarm.state },
    h("th", { scope: "row" }, alarm.name),
    h("td", { "data-label": "State" }, h("span", { class: `badge alarm-${alarm.state}` }, alarm.state)),
    h("td", { "data-label": "Rule" }, h("code", {}, ruleText(alarm))),
    h("td", { "data-label": "Measured" }, alarm.targets.length
      ? h("ul", { class: "plain alarm-targets" }, alarm.targets.map((target) => targetItem(alarm, target)))
      : h("span", { class: "help" }, "nothing measured yet")),
    h("td", { "data-label": "Webhook" }, alarm.webhook ? h("code", {}, alarm.webhook) : "none",
      alarm.last_webhook_error ? h("p", { class: "field-error" }, alarm.last_webhook_error) : null),
    h("td", { "data-label": "Actions" }, h("button", { type: "button", class: "secondary", "data-action": "delete-alarm",
      "aria-label": `Delete the alarm ${alarm.name}`, onclick: () => void remove(alarm) }, "Delete")));

  fill(main, h("h1", {}, "Alarms"), status,
    h("p", { class: "help" }, "Each rule is judged on every metrics sample; a firing or resolved alarm is an event ",
      "(the dashboard's feed, corral events) and, if the rule has one, a call to its webhook."),
    h("div", { class: "table-wrap" }, h("table", { class: "list alarms" }, h("caption", { class: "visually-hidden" }, "Alarms"),
      h("thead", {}, h("tr", {}, ["Name", "State", "Rule", "Measured", "Webhook", "Actions"].map((title) => h("th", { scope: "col" }, title)))),
      body)),
    h("div", { class: "grid" }, form));

  const refresh = async () => {
    const alarms = await get<Alarm[]>("/api/v1/alarms");
    fill(body, alarms.length ? alarms.map(row) : h("tr", {}, h("td", { colspan: 6 }, "No alarms yet.")));
  };
  void refresh().catch((error) => (status.textContent = (error as Error).message));
  // Values change with every sample; states change with events (re-read at once).
  const timer = window.setInterval(() => void refresh().catch(() => {}), 5000);
  const unsubscribe = subscribeEvents((event) => {
    if (event.kind.startsWith("alarm.")) void refresh().catch(() => {});
  });
  return () => {
    clearInterval(timer);
    unsubscribe();
  };
}
