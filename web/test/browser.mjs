// The web UI in a real browser (tests/e2e/web_ui.sh runs it): Debian's Chromium, headless,
// driven by puppeteer-core, against a real corrald with a real VM on the emulated engine.
// One scenario, as a user goes: sign in; create a VM with the wizard (a bad memory size first:
// the API's message must appear at that field); start it; the console shows the guest's prompt
// and the answer to a typed command; the charts have data points; stop; delete. Screenshots of
// each page go to $CORRAL_SCREENSHOTS. Prints PASS/FAIL lines and "N passed, N failed";
// exit 1 if any failed.
// Environment: CORRAL_URL (https://HOST:PORT), CORRAL_TOKEN, CORRAL_LINK (a sign-in link's code), CHROMIUM,
// CORRAL_SCREENSHOTS (a folder), CORRAL_BOOT_WAIT (seconds for the guest's prompt, default 300).
import puppeteer from "puppeteer-core";
import { mkdirSync } from "node:fs";

const url = process.env.CORRAL_URL;
const token = process.env.CORRAL_TOKEN;
const shots = process.env.CORRAL_SCREENSHOTS ?? "screenshots";
const bootWait = Number(process.env.CORRAL_BOOT_WAIT ?? 300) * 1000;
mkdirSync(shots, { recursive: true });
let passed = 0;
let failed = 0;
const check = (name, ok, detail = "") => {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? "PASS" : "FAIL"}: ${name}${ok || !detail ? "" : ` (${detail})`}`);
  return ok;
};
/** Waits for `fn` (run in the page) to be truthy; false after `timeout` ms instead of throwing. */
const until = async (page, fn, timeout, ...args) => {
  try {
    await page.waitForFunction(fn, { timeout, polling: 250 }, ...args);
    return true;
  } catch {
    return false;
  }
};
const shot = (page, name, fullPage = true) => page.screenshot({ path: `${shots}/${name}.png`, fullPage });
const consoleText = (page) => page.$eval(".xterm-rows", (rows) => rows.textContent ?? "").catch(() => "");

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM,
  headless: true,
  // corrald's self-signed certificate on the loopback; no sandbox inside a container running as root.
  acceptInsecureCerts: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
const vm = "webui1";
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 800 });
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(String(error)));
  page.on("dialog", (dialog) => dialog.accept());
  const requests = [];
  page.on("request", (request) => requests.push(request.url()));

  console.log("== sign in");
  const started = Date.now();
  await page.goto(url, { waitUntil: "load" });
  check("the sign-in form appears", await until(page, () => document.querySelector("#token"), 10000));
  const interactive = Date.now() - started;
  check("every request stayed on corrald (no CDN)", requests.every((each) => each.startsWith(url)), requests.join(" "));
  const firstPageRequests = requests.length;
  await shot(page, "signin");
  await page.type("#token", "corral_wrong");
  await page.click("form button[type=submit]");
  check("a wrong token: the API's message at the token field",
    await until(page, () => /not valid/.test(document.querySelector("#token-error")?.textContent ?? ""), 10000));
  await page.$eval("#token", (input) => (input.value = ""));
  await page.type("#token", token);
  const signInStart = Date.now();
  await page.click("form button[type=submit]");
  check("signed in: the dashboard", await until(page, () => document.querySelector("main h1")?.textContent === "Dashboard", 10000));
  check("  ... shows the host", await until(page, () => /CPUs/.test(document.querySelector("dl.facts")?.textContent ?? ""), 10000));
  const dashboardReady = Date.now() - signInStart;
  const cookies = await page.cookies();
  const session = cookies.find((cookie) => cookie.name === "__Host-corral_session");
  check("the session cookie is HttpOnly, Secure, SameSite=Strict",
    session && session.httpOnly && session.secure && session.sameSite === "Strict", JSON.stringify(session));
  check("  ... and page scripts cannot read it", !(await page.evaluate(() => document.cookie)).includes("corral_session"));

  console.log("== create a VM with the wizard");
  await page.goto(`${url}/#/vms/new`);
  await until(page, () => document.querySelector("[data-field=name] input"), 10000);
  await until(page, () => document.querySelector("[data-field=image] select")?.options.length > 1, 10000);
  await page.type("[data-field=name] input", vm);
  await page.click("form.wizard button[type=submit]");                   // -> CPUs and memory
  await page.$eval("[data-field=memory_mib] input", (input) => (input.value = ""));
  await page.type("[data-field=memory_mib] input", "10");
  await page.click("form.wizard button[type=submit]");                   // -> disks and network
  await page.click("form.wizard button[type=submit]");                   // -> review
  await page.click("form.wizard button[type=submit]");                   // create
  check("memory 10 MiB: the API's message appears at the memory field",
    await until(page, () => /memory_mib|MiB/.test(document.querySelector("[data-field=memory_mib] .field-error")?.textContent ?? ""), 10000));
  const memoryError = await page.$eval("[data-field=memory_mib] .field-error", (e) => e.textContent);
  console.log(`  the message: ${memoryError}`);
  check("  ... the wizard went back to that step, the field marked invalid and focused",
    await page.$eval("[data-field=memory_mib] input", (input) =>
      input.getAttribute("aria-invalid") === "true" && document.activeElement === input && input.offsetParent !== null));
  await shot(page, "wizard-error");
  await page.$eval("[data-field=memory_mib] input", (input) => (input.value = ""));
  await page.type("[data-field=memory_mib] input", "256");
  await page.click("form.wizard button[type=submit]");
  await page.click("form.wizard button[type=submit]");
  await page.click("form.wizard button[type=submit]");
  check("memory 256 MiB: created, on the VM's page", await until(page, (name) => location.hash === `#/vms/${name}`, 15000, vm));

  console.log("== start it; the console");
  await until(page, () => document.querySelector("button[data-action=start]"), 10000);
  await page.click("button[data-action=start]");
  check("started: the state is running", await until(page, () => document.querySelector(".badge")?.textContent === "running", 60000));
  const prompt = await until(page, () => /corral:~# /.test(document.querySelector(".xterm-rows")?.textContent ?? ""), bootWait);
  check("the console shows the guest's shell prompt", prompt, (await consoleText(page)).slice(-300));
  await page.click(".console .terminal");
  await page.keyboard.type("echo answer-$((6*7))\n");
  check("  ... and the answer to a typed command",
    await until(page, () => /answer-42/.test(document.querySelector(".xterm-rows")?.textContent ?? ""), 30000),
    (await consoleText(page)).slice(-300));
  check("the charts have data points",
    await until(page, () => [...document.querySelectorAll("figure.chart")].every((f) => Number(f.dataset.points) >= 2), 30000),
    await page.$$eval("figure.chart", (figures) => figures.map((f) => f.dataset.points).join(",")));
  check("  ... and the CPU chart drew its line (a uPlot canvas)", (await page.$$("figure.chart canvas")).length >= 4);
  await shot(page, "vm");

  console.log("== the other pages");
  await page.goto(`${url}/#/vms`);
  check("the VM list shows it running",
    await until(page, (name) => document.querySelector(`tr[data-vm="${name}"] .badge`)?.textContent === "running", 10000, vm));
  await until(page, () => document.querySelector("svg.spark polyline"), 10000);
  await shot(page, "vms");
  await page.goto(`${url}/#/`);
  await until(page, () => Number(document.querySelector("figure.chart")?.dataset.points) >= 1, 10000);
  await until(page, () => document.querySelector("ol.feed li"), 3000);
  await shot(page, "dashboard");
  await page.goto(`${url}/#/storage`);
  await until(page, () => document.querySelectorAll("table.list tbody tr").length >= 2, 10000);
  await shot(page, "storage");
  await page.setViewport({ width: 390, height: 844, isMobile: true });
  await page.goto(`${url}/#/vms`);
  await until(page, (name) => document.querySelector(`tr[data-vm="${name}"]`), 10000, vm);
  check("at phone width nothing scrolls sideways",
    await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1),
    String(await page.evaluate(() => document.documentElement.scrollWidth)));
  await shot(page, "vms-phone");
  await page.setViewport({ width: 1280, height: 800 });

  console.log("== keyboard");
  await page.goto(`${url}/#/vms/new`);
  await until(page, () => document.activeElement?.tagName === "H1", 5000);
  await page.keyboard.press("Tab");
  check("Tab from the page's heading reaches the wizard's first field, which has a label",
    await page.evaluate(() => {
      const active = document.activeElement;
      return active?.closest("[data-field=name]") !== null && document.querySelector(`label[for="${active.id}"]`) !== null;
    }));

  console.log("== stop and delete");
  await page.goto(`${url}/#/vms/${vm}`);
  await until(page, () => document.querySelector("button[data-action=stop]"), 10000);
  await page.click("button[data-action=stop]");
  check("stopped", await until(page, () => document.querySelector(".badge")?.textContent === "stopped", 120000));
  await until(page, () => !document.querySelector("button[data-action=delete]")?.disabled, 10000);
  await page.click("button[data-action=delete]");
  check("deleted: back on the list", await until(page, () => location.hash === "#/vms", 15000));
  check("  ... without it", await until(page, (name) => document.querySelector("tbody") &&
    !document.querySelector(`tr[data-vm="${name}"]`) && document.querySelectorAll("tbody tr").length > 0, 10000, vm));

  console.log("== sign out");
  await page.click("header .who button");
  check("signed out: the sign-in form", await until(page, () => document.querySelector("#token"), 10000));
  console.log("== a one-time sign-in link (what tools/quickstart prints)");
  await page.goto(`${url}/#signin=${process.env.CORRAL_LINK}`);
  check("the link signs in: the dashboard", await until(page, () => document.querySelector("main h1")?.textContent === "Dashboard", 10000));
  check("  ... as 'sign-in link', the code gone from the address bar",
    (await page.$eval(".who span", (e) => e.textContent)) === "sign-in link" && !page.url().includes("signin="), page.url());
  await page.click("header .who button");
  await until(page, () => document.querySelector("#token"), 10000);
  await page.goto(`${url}/#signin=${process.env.CORRAL_LINK}`);
  check("  ... once: used again, the sign-in form says why",
    await until(page, () => /not valid/.test(document.querySelector("#token-error")?.textContent ?? ""), 10000));
  check("no error in the page's scripts", pageErrors.length === 0, pageErrors.join("; "));
  console.log(`MEASURED: sign-in form interactive ${interactive} ms after navigation, ${firstPageRequests} requests; ` +
    `dashboard ready ${dashboardReady} ms after signing in`);
} catch (error) {
  check(`the scenario ran to its end`, false, String(error?.stack ?? error));
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
