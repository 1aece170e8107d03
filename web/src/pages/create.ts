// The create-VM wizard: image, CPUs, memory and display, disks and network, then a review. Nothing is
// checked here that the API checks: its errors come back naming a field, and the wizard goes to
// that field's step and shows the message under it.
import { call, get, Host, Vm, Volume } from "../api";
import { displayField, displayValue } from "../display";
import { fill, h, mib } from "../dom";
import { clearErrors, Field, field, showAtField } from "../form";

interface Image { name: string; description?: string }
interface Network { name: string; kind: string }

export function createPage(main: HTMLElement): () => void {
  const name = field("name", "Name", h("input", { type: "text", autocomplete: "off", spellcheck: "false", required: true }),
    "Letters, digits, '-' and '_'; it names the VM in the CLI and the API.");
  const image = field("image", "Image", h("select", {}), "What the VM boots: a kernel, an initramfs and a root disk (a linked clone).");
  const engine = field("engine", "Engine", h("select", {}, h("option", { value: "" }, "The host's default")));
  const vcpus = field("vcpus", "vCPUs", h("input", { type: "number", value: 1, min: 1, inputmode: "numeric" }));
  const memory = field("memory_mib", "Memory (MiB)", h("input", { type: "number", value: 512, min: 64, step: 64, inputmode: "numeric" }));
  const display = displayField(null);
  const disk = field("disks", "Extra disk", h("select", {}, h("option", { value: "" }, "None")),
    "An existing volume, attached after the root disk.");
  const network = field("nics", "Network", h("select", {}, h("option", { value: "" }, "No network")));
  const policy = field("restart_policy", "Restart policy", h("select", {},
    ["no", "on-failure", "always"].map((value) => h("option", { value }, value))));
  const steps: { title: string; fields: Field[] }[] = [
    { title: "Image", fields: [name, image, engine] },
    { title: "CPUs, memory and display", fields: [vcpus, memory, display] },
    { title: "Disks and network", fields: [disk, network, policy] },
    { title: "Review", fields: [] },
  ];
  const all = steps.flatMap((step) => step.fields);
  const status = h("p", { class: "status form-error", role: "alert" });
  const progress = h("ol", { class: "steps" });
  const review = h("dl", { class: "facts" });
  const back = h("button", { type: "button", class: "secondary" }, "Back");
  const next = h("button", { type: "submit" }, "Next");
  const fieldsets = steps.map((step, index) => h("fieldset", { "data-step": index },
    h("legend", {}, `Step ${index + 1} of ${steps.length}: ${step.title}`),
    step.fields.map((each) => each.wrapper), index === steps.length - 1 ? review : null));
  const form = h("form", { class: "card wizard", novalidate: true }, progress, fieldsets, status,
    h("div", { class: "actions" }, back, next));
  fill(main, h("h1", {}, "New VM"), form);

  let current = 0;
  const show = (index: number, focus = true) => {
    current = index;
    fieldsets.forEach((set, i) => (set.hidden = i !== index));
    fill(progress, steps.map((step, i) => h("li", { "aria-current": i === index ? "step" : false }, step.title)));
    back.hidden = index === 0;
    next.textContent = index === steps.length - 1 ? "Create" : "Next";
    if (index === steps.length - 1) {
      fill(review, ...[["Name", name.input.value], ["Image", image.input.value || "none"],
        ["Engine", engine.input.value || "the host's default"], ["vCPUs", vcpus.input.value],
        ["Memory", mib(Number(memory.input.value))], ["Display", display.input.value],
        ["Extra disk", disk.input.value || "none"],
        ["Network", network.input.value || "none"], ["Restart policy", policy.input.value]]
        .flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
    }
    if (focus) (steps[index].fields[0]?.input ?? next).focus();
  };
  back.addEventListener("click", () => show(current - 1));

  const body = () => {
    const request: Record<string, unknown> = {
      name: name.input.value.trim(),
      vcpus: Number(vcpus.input.value),
      memory_mib: Number(memory.input.value),
      restart_policy: policy.input.value,
      nics: network.input.value ? [{ network: network.input.value }] : [],
    };
    if (image.input.value) request.image = image.input.value;
    if (engine.input.value) request.engine = engine.input.value;
    if (display.input.value !== "none") request.display = displayValue(display.input.value);
    if (disk.input.value) {
      const [pool, volume] = disk.input.value.split("/");
      request.disks = [{ pool, volume }];
    }
    return request;
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (current < steps.length - 1) {
      show(current + 1);
      return;
    }
    clearErrors(all);
    status.textContent = "";
    next.disabled = true;
    try {
      const vm = await call<Vm>("POST", "/api/v1/vms", body());
      location.hash = `#/vms/${encodeURIComponent(vm.name)}`;
    } catch (error) {
      // Back to the step of the field the API named, the message under it.
      const step = steps.findIndex((each) => each.fields.some((f) => showAtField([f], error)));
      if (step >= 0) {
        show(step, false);
        showAtField(all, error);
      } else {
        status.textContent = (error as Error).message;
      }
    } finally {
      next.disabled = false;
    }
  });

  void (async () => {
    const [images, host, volumes, networks] = await Promise.all([get<Image[]>("/api/v1/images"), get<Host>("/api/v1/host"),
      get<Volume[]>("/api/v1/volumes"), get<Network[]>("/api/v1/networks").catch(() => [] as Network[])]);
    fill(image.input, h("option", { value: "" }, "None"),
      images.map((each) => h("option", { value: each.name, selected: each === images[0] }, each.description ? `${each.name} — ${each.description}` : each.name)));
    for (const [engineName, info] of Object.entries(host.engines))
      engine.input.append(h("option", { value: engineName, disabled: !info.available }, `${engineName}${info.available ? "" : " (unavailable)"}`));
    for (const volume of volumes.filter((each) => each.used_by.length === 0))
      disk.input.append(h("option", { value: `${volume.pool}/${volume.name}` }, `${volume.pool}/${volume.name}`));
    for (const each of networks)
      network.input.append(h("option", { value: each.name, selected: each.name === "default" }, `${each.name} (${each.kind})`));
    vcpus.input.setAttribute("max", String(host.cpus));
  })().catch((error) => (status.textContent = (error as Error).message));
  show(0);
  return () => {};
}
