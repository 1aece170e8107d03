// Dashboard: the host's CPU and memory over the last hour, its pools, VMs by state, running
// tasks and the live event feed.
import { get, Host, Pool, Series, Task, Vm } from "../api";
import { Chart, hostCharts } from "../charts";
import { bytes, fill, h, mib } from "../dom";
import { describeEvent, subscribeEvents } from "../events";

export function dashboardPage(main: HTMLElement): () => void {
  const hostBox = h("section", { class: "card", "aria-labelledby": "host-title" }, h("h2", { id: "host-title" }, "Host"));
  const charts = hostCharts().map((spec) => new Chart(spec));
  const chartBox = h("section", { class: "card", "aria-labelledby": "usage-title" },
    h("h2", { id: "usage-title" }, "Usage, last hour"), h("div", { class: "charts" }, charts.map((c) => c.element)));
  const vmsBox = h("section", { class: "card", "aria-labelledby": "vms-title" }, h("h2", { id: "vms-title" }, "VMs"));
  const poolsBox = h("section", { class: "card", "aria-labelledby": "pools-title" }, h("h2", { id: "pools-title" }, "Storage pools"));
  const tasksBox = h("section", { class: "card", "aria-labelledby": "tasks-title" }, h("h2", { id: "tasks-title" }, "Running tasks"));
  const feed = h("ol", { class: "feed", "aria-live": "polite" });
  const feedBox = h("section", { class: "card", "aria-labelledby": "events-title" },
    h("h2", { id: "events-title" }, "Events"), feed);
  fill(main, h("h1", {}, "Dashboard"), h("div", { class: "grid" }, hostBox, vmsBox, chartBox, poolsBox, tasksBox, feedBox));

  const refresh = async () => {
    const [host, vms, pools, tasks, series] = await Promise.all([
      get<Host>("/api/v1/host"), get<Vm[]>("/api/v1/vms"), get<Pool[]>("/api/v1/pools"), get<Task[]>("/api/v1/tasks"),
      get<Series>(`/api/v1/host/metrics?since=${Math.floor(Date.now() / 1000) - 3600}`)]);
    fill(hostBox, h("h2", { id: "host-title" }, "Host"), h("dl", { class: "facts" },
      h("dt", {}, "Name"), h("dd", {}, host.hostname),
      h("dt", {}, "CPUs"), h("dd", {}, host.cpus),
      h("dt", {}, "Memory"), h("dd", {}, mib(host.memory_mib)),
      h("dt", {}, "Default engine"), h("dd", {}, host.default_engine, h("span", { class: "help" }, ` — ${host.calibration.reason}`)),
      h("dt", {}, "Version"), h("dd", {}, host.version)));
    for (const chart of charts) chart.update(series);
    const counts = new Map<string, number>();
    for (const vm of vms) counts.set(vm.state, (counts.get(vm.state) ?? 0) + 1);
    fill(vmsBox, h("h2", { id: "vms-title" }, "VMs"),
      vms.length === 0
        ? h("p", {}, "No VMs yet. ", h("a", { href: "#/vms/new" }, "Create one"))
        : h("ul", { class: "states" }, [...counts].map(([state, count]) =>
          h("li", {}, h("a", { href: "#/vms" }, h("strong", {}, count), ` ${state}`)))));
    fill(poolsBox, h("h2", { id: "pools-title" }, "Storage pools"), h("ul", { class: "plain" }, pools.map((pool) => {
      const used = pool.capacity_bytes - pool.available_bytes;
      return h("li", {}, h("span", {}, `${pool.name}: ${bytes(used)} of ${bytes(pool.capacity_bytes)} used`),
        h("meter", { min: 0, max: pool.capacity_bytes, value: used, "aria-label": `${pool.name} usage` }));
    })));
    const running = tasks.filter((task) => task.status === "running" || task.status === "queued");
    fill(tasksBox, h("h2", { id: "tasks-title" }, "Running tasks"),
      running.length === 0 ? h("p", {}, "None. ", h("a", { href: "#/tasks" }, "All tasks"))
        : h("ul", { class: "plain" }, running.map((task) =>
          h("li", {}, `${task.id} ${task.kind} ${task.target}: ${task.message} `,
            h("progress", { max: 1, value: task.progress, "aria-label": `${task.id} progress` })))));
  };
  const timer = window.setInterval(() => void refresh().catch(() => {}), 5000);
  void refresh().catch(() => {});
  const unsubscribe = subscribeEvents((event) => {
    feed.prepend(h("li", {}, describeEvent(event)));
    while (feed.children.length > 30) feed.lastElementChild?.remove();
  });
  return () => {
    clearInterval(timer);
    unsubscribe();
    for (const chart of charts) chart.destroy();
  };
}
