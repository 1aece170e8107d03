// bench/web/run.sh's browser half: times and requests of the web UI's pages, headless Chromium.
// Environment: CORRAL_URL, CORRAL_TOKEN, CHROMIUM.
import puppeteer from "puppeteer-core";

const url = process.env.CORRAL_URL;
const browser = await puppeteer.launch({ executablePath: process.env.CHROMIUM, headless: true, acceptInsecureCerts: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
const page = await browser.newPage();
await page.setViewport({ width: 1280, height: 800 });
let requests = [];
page.on("requestfinished", async (request) => {
  const response = request.response();
  let size = 0;
  try {
    size = (await response?.buffer())?.length ?? 0;
  } catch {
    // a redirect or a WebSocket: no body
  }
  requests.push({ url: request.url(), size, cached: response?.fromCache() ?? false });
});
const settle = () => new Promise((resolve) => setTimeout(resolve, 500));
const report = (what, ms) => {
  const fetched = requests.filter((each) => !each.cached);
  console.log(`${what}: ${ms === undefined ? "" : `${ms} ms, `}${fetched.length} requests, ` +
    `${fetched.reduce((sum, each) => sum + each.size, 0)} bytes` +
    (requests.length > fetched.length ? ` (+${requests.length - fetched.length} from the cache)` : ""));
  requests = [];
};

let start = Date.now();
await page.goto(url);
await page.waitForSelector("#token");
const cold = Date.now() - start;
await settle();
report("sign-in page, cold cache, to an interactive form", cold);
await page.type("#token", process.env.CORRAL_TOKEN);
start = Date.now();
await page.click("form button[type=submit]");
await page.waitForFunction(() => /CPUs/.test(document.querySelector("dl.facts")?.textContent ?? ""));
const signedIn = Date.now() - start;
await settle();
report("sign in to a dashboard with its data", signedIn);
for (const [hash, ready] of [["#/vms", "table.list tbody tr"], ["#/vms/new", "[data-field=image] select option"],
  ["#/storage", "table.list tbody tr"], ["#/tasks", "table.list"]]) {
  start = Date.now();
  await page.goto(`${url}/${hash}`);
  await page.waitForSelector(ready);
  const ms = Date.now() - start;
  await settle();
  report(`page ${hash}`, ms);
}
await page.goto(`${url}/#/`);
await page.waitForFunction(() => /CPUs/.test(document.querySelector("dl.facts")?.textContent ?? ""));
await settle();
requests = [];
start = Date.now();
await page.reload();
await page.waitForFunction(() => /CPUs/.test(document.querySelector("dl.facts")?.textContent ?? ""));
const warm = Date.now() - start;
await settle();
report("reload of the dashboard, warm cache", warm);
await browser.close();
