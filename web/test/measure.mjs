// bench/web/run.sh's browser half: times, requests and bytes of the web UI's pages, and of the
// peer's (Cockpit's) login page, in headless Chromium on the loopback.
// Environment: CHROMIUM; CORRAL_URL, CORRAL_TOKEN, CORRAL_VM (a running VM: its page and the
// "open a VM" action); COCKPIT_URL (optional: a cockpit-ws on the loopback: its login page);
// COCKPIT_SESSION_URL (optional: a cockpit-ws --local-session: its Overview and Accounts pages);
// RUNS (default 5).
// Bytes are what crossed the wire (Chrome's encodedDataLength: headers and the body as sent,
// compressed when the server compressed it); requests served from the browser's cache are
// counted apart. Ends with a summary table of corral against the peer and the full-page baseline.
import puppeteer from "puppeteer-core";

const url = process.env.CORRAL_URL;
const vm = process.env.CORRAL_VM;
const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM, headless: true, acceptInsecureCerts: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });

// A page in a browser context of its own (an empty cache and no cookies), with the network
// watched through the DevTools protocol.
async function freshPage() {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const cdp = await page.createCDPSession();
  await cdp.send("Network.enable");
  const watch = { page, cdp, requests: new Map() };
  cdp.on("Network.requestWillBeSent", (event) => {
    if (!event.request.url.startsWith("data:"))
      watch.requests.set(event.requestId, { url: event.request.url, wire: 0, cached: false, encoding: "" });
  });
  cdp.on("Network.requestServedFromCache", (event) => {
    const request = watch.requests.get(event.requestId);
    if (request) request.cached = true;
  });
  cdp.on("Network.responseReceived", (event) => {
    const request = watch.requests.get(event.requestId);
    if (!request) return;
    request.cached ||= event.response.fromDiskCache || event.response.fromPrefetchCache || false;
    const headers = Object.fromEntries(Object.entries(event.response.headers).map(([k, v]) => [k.toLowerCase(), v]));
    request.encoding = headers["content-encoding"] ?? "";
  });
  cdp.on("Network.loadingFinished", (event) => {
    const request = watch.requests.get(event.requestId);
    if (request) request.wire = event.encodedDataLength;
  });
  return watch;
}

// Late requests (an API call after the first paint) belong to the page that made them.
const settle = () => new Promise((resolve) => setTimeout(resolve, 500));
const figures = {};
async function measure(watch, what, action, ready) {
  return measureAsync(watch, what, action, () => watch.page.waitForFunction(ready, { polling: 20, timeout: 60000 }, vm));
}
// The same with `ready` run here, not in the page (Cockpit's pages are in frames).
async function measureAsync(watch, what, action, ready) {
  await settle();
  watch.requests.clear();
  const start = Date.now();
  await action();
  await ready();
  const ms = Date.now() - start;
  await settle();
  const all = [...watch.requests.values()];
  const fetched = all.filter((each) => !each.cached);
  const bytes = fetched.reduce((sum, each) => sum + each.wire, 0);
  const compressed = fetched.filter((each) => each.encoding).length;
  (figures[what] ??= []).push({ ms, requests: fetched.length, bytes, compressed, cached: all.length - fetched.length });
}

const signInForm = () => document.querySelector("#token");
const dashboard = () => /CPUs/.test(document.querySelector("dl.facts")?.textContent ?? "");
// A VM's page with its data: its state, and the console showing the guest's prompt.
const vmPage = (name) => document.querySelector("main h1")?.textContent === name &&
  document.querySelector(".badge")?.textContent === "running" &&
  /# /.test(document.querySelector(".xterm-rows")?.textContent ?? "");

// Each scenario runs `runs` times, each in a fresh browser context; the figures are medians.
const runs = Number(process.env.RUNS ?? 5);
const cockpitUrl = process.env.COCKPIT_URL;
const cockpitSessionUrl = process.env.COCKPIT_SESSION_URL;
let cockpitSession;
for (let run = 0; run < runs; run++) {
  console.error(`measure: run ${run + 1} of ${runs}`);
  const corral = await freshPage();
  await measure(corral, "sign-in page, cold cache, to an interactive form", () => corral.page.goto(url), signInForm);
  await corral.page.type("#token", process.env.CORRAL_TOKEN);
  await measure(corral, "sign in to a dashboard with its data", () => corral.page.click("form button[type=submit]"), dashboard);
  const vmRow = (name) => document.querySelector(`tr[data-vm="${name}"] .badge`);
  for (const [hash, ready] of [["#/vms", vmRow], [`#/vms/${vm}`, vmPage],
    ["#/vms/new", () => document.querySelector("[data-field=image] select option")],
    ["#/storage", () => document.querySelector("table.list tbody tr")], ["#/tasks", () => document.querySelector("table.list")]]) {
    await measure(corral, `page ${hash}`, () => corral.page.goto(`${url}/${hash}`), ready);
  }
  // An action: opening a VM from the list. The SPA fetches the VM's data; a full page load per
  // action (the baseline the issue names) reloads the page, with a warm and with a cold cache.
  await corral.page.goto(`${url}/#/vms`);
  await corral.page.waitForFunction(vmRow, { timeout: 60000 }, vm);
  await measure(corral, "open a VM from the list (SPA)", () => corral.page.click(`tr[data-vm="${vm}"] th a`), vmPage);
  await measure(corral, "the VM's page, full reload, warm cache", () => corral.page.reload(), vmPage);
  await corral.cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await measure(corral, "the VM's page, full reload, cold cache", () => corral.page.reload(), vmPage);
  await corral.cdp.send("Network.setCacheDisabled", { cacheDisabled: false });
  await corral.page.goto(`${url}/#/`);
  await corral.page.waitForFunction(dashboard, { timeout: 60000 });
  await measure(corral, "reload of the dashboard, warm cache", () => corral.page.reload(), dashboard);
  await corral.cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
  await measure(corral, "reload of the dashboard, cold cache", () => corral.page.reload(), dashboard);
  await corral.cdp.send("Network.setCacheDisabled", { cacheDisabled: false });

  if (cockpitUrl) {
    const cockpit = await freshPage();
    const loginForm = () => {
      const user = document.querySelector("#login-user-input");
      return user && user.offsetParent !== null;  // login.js shows the form once it is ready
    };
    await measure(cockpit, "Cockpit login page, cold cache, to an interactive form", () => cockpit.page.goto(cockpitUrl), loginForm);
    await measure(cockpit, "Cockpit login page, reload, warm cache", () => cockpit.page.reload(), loginForm);
    await cockpit.page.browserContext().close();
  }
  if (cockpitSessionUrl) {
    // Cockpit signed in (a local session: no login): its Overview, the nearest to our dashboard,
    // with its usage data; each of its pages is a document of its own in an iframe. One browser
    // context for all runs (the local session ends with the last connection of its context), the
    // cold cache by disabling the cache.
    cockpitSession ??= await freshPage();
    const cockpit = cockpitSession;
    const frame = async (part) => {
      for (const deadline = Date.now() + 60000; Date.now() < deadline;) {
        const found = cockpit.page.frames().find((each) => each.url().includes(part));
        if (found) return found;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      throw new Error(`Cockpit showed no frame ${part} within 60 s`);
    };
    const inFrame = (part, test) => async () => {
      const found = await frame(part);
      await found.waitForFunction(test, { polling: 20, timeout: 60000 });
    };
    const overview = inFrame("/system/index.html", () => /of \d+ CPUs/.test(document.body?.innerText ?? ""));
    await cockpit.cdp.send("Network.setCacheDisabled", { cacheDisabled: true });
    await measureAsync(cockpit, "Cockpit overview, cold cache, with its usage data", () => cockpit.page.goto(`${cockpitSessionUrl}system`), overview);
    await cockpit.cdp.send("Network.setCacheDisabled", { cacheDisabled: false });
    await cockpit.page.waitForSelector('a[href="/users"]', { visible: true });
    await measureAsync(cockpit, "Cockpit: open Accounts from the menu", () => cockpit.page.click('a[href="/users"]'),
      inFrame("/users/index.html", () => /root/.test(document.body?.innerText ?? "")));
    await cockpit.page.goto(`${cockpitSessionUrl}system`);
    await overview();
    await measureAsync(cockpit, "Cockpit overview, full reload, warm cache", () => cockpit.page.reload(), overview);
  }

  await corral.page.browserContext().close();
}

const median = (values) => {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.floor((sorted.length - 1) / 2)];
};
const summary = Object.fromEntries(Object.entries(figures).map(([what, samples]) =>
  [what, Object.fromEntries(["ms", "requests", "bytes", "compressed", "cached"].map((key) =>
    [key, median(samples.map((sample) => sample[key]))]).concat([["min", Math.min(...samples.map((each) => each.ms))],
    ["max", Math.max(...samples.map((each) => each.ms))]]))]));
console.log(`== each page and action, median of ${runs} runs (ms min-max), requests, bytes on the wire`);
for (const [what, x] of Object.entries(summary)) {
  console.log(`  ${what}: ${x.ms} ms (${x.min}-${x.max}), ${x.requests} requests, ${x.bytes} bytes` +
    (x.compressed ? ` (${x.compressed} compressed)` : "") + (x.cached ? `, +${x.cached} from the cache` : ""));
}
const row = (what, a, b) => {
  const x = summary[a], y = summary[b];
  if (!x || !y) return;
  const ratio = (p, q) => (q ? (p / q).toFixed(2) : "-");
  console.log(`  ${what.padEnd(44)} ${String(x.ms).padStart(6)} ${String(y.ms).padStart(6)} ${ratio(x.ms, y.ms).padStart(6)}` +
    ` ${String(x.requests).padStart(4)} ${String(y.requests).padStart(4)}` +
    ` ${String(x.bytes).padStart(8)} ${String(y.bytes).padStart(8)} ${ratio(x.bytes, y.bytes).padStart(6)}`);
};
console.log("== summary: ms, requests, bytes on the wire (corral, the other, corral/other)");
console.log(`  ${"".padEnd(44)} ${"ms".padStart(6)} ${"".padStart(6)} ${"ratio".padStart(6)} ${"req".padStart(4)} ${"".padStart(4)}` +
  ` ${"bytes".padStart(8)} ${"".padStart(8)} ${"ratio".padStart(6)}`);
row("sign-in page, cold: corral / Cockpit", "sign-in page, cold cache, to an interactive form",
  "Cockpit login page, cold cache, to an interactive form");
row("dashboard, cold: corral / Cockpit overview", "reload of the dashboard, cold cache",
  "Cockpit overview, cold cache, with its usage data");
row("dashboard, warm: corral / Cockpit overview", "reload of the dashboard, warm cache",
  "Cockpit overview, full reload, warm cache");
row("a page's action: open a VM / Cockpit Accounts", "open a VM from the list (SPA)", "Cockpit: open Accounts from the menu");
row("open a VM: SPA / full reload (warm)", "open a VM from the list (SPA)", "the VM's page, full reload, warm cache");
row("open a VM: SPA / full reload (cold)", "open a VM from the list (SPA)", "the VM's page, full reload, cold cache");
await browser.close();
