// The web UI in a real browser (tests/e2e/web_ui.sh runs it): Debian's Chromium, headless,
// driven by puppeteer-core, against a real corrald with a real VM on the emulated engine.
// One scenario, as a user goes: sign in; create a VM with the wizard (a bad memory size first:
// the API's message must appear at that field; a 1024x768 display); start it; the console shows
// the guest's prompt and the answer to a typed command; the Screen tab (noVNC through corrald)
// connects at 1024x768, and what is typed there, pasted as typing there, run after a Ctrl-C from
// its send-keys menu, or typed in view-only mode (which must not arrive) is read back from the
// screenshot API with tesseract; the charts have data points; the memory card sets and clears a balloon target;
// the Migrate form refuses an http:// destination at its field and shows an unreachable one's task failure, and an
// incoming migration shows its VM migrating-in; the default network's DHCP range is edited (bad values at their fields first); xterm.js and uPlot are loaded by the
// pages that use them, never by the sign-in page, and a card whose chunk answers 404 says "reload
// the page"; stop; delete; a native submit of the sign-in form keeps the token out of the address. Screenshots of each
// page go to $CORRAL_SCREENSHOTS. Prints PASS/FAIL lines and "N passed, N failed"; exit 1 if any failed.
// Environment: CORRAL_URL (https://HOST:PORT), CORRAL_TOKEN, CORRAL_LINK (a sign-in link's code), CHROMIUM,
// CORRAL_SCREENSHOTS (a folder), CORRAL_BOOT_WAIT (seconds for the guest's prompt, default 300).
import puppeteer from "puppeteer-core";
import { execFileSync } from "node:child_process";
import { randomInt } from "node:crypto";
import { mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";

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
  // The detail on the FAIL line itself: CI keeps only a failed test's FAIL lines and its last ones.
  const oneLine = String(detail).replace(/\s+/g, " ").trim();
  console.log(`${ok ? "PASS" : "FAIL"}: ${name}${ok || !oneLine ? "" : ` (${oneLine})`}`);
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
/** A word OCR reads back unmistakably: lowercase letters only, none that look alike (l, i, o, m, n). */
const randomWord = () => Array.from({ length: 8 }, (_, i) =>
  (i % 2 ? "aeu" : "bdfghkprstvz")[randomInt(i % 2 ? 3 : 12)]).join("");
/** Types `text` on the focused element as a person on a US keyboard: Shift held for "$", "(",
 *  "*"... (puppeteer's keyboard.type sends "$" as the Digit4 key without Shift, and noVNC passes
 *  the key's scancode, so the guest would see "4"). */
const typeUs = async (page, text) => {
  const shifted = { "~": "`", "!": "1", "@": "2", "#": "3", "$": "4", "%": "5", "^": "6", "&": "7", "*": "8", "(": "9",
    ")": "0", "_": "-", "+": "=", "{": "[", "}": "]", "|": "\\", ":": ";", "\"": "'", "<": ",", ">": ".", "?": "/" };
  for (const character of text) {
    if (character === "\n") await page.keyboard.press("Enter");
    else if (shifted[character]) {
      await page.keyboard.down("Shift");
      await page.keyboard.press(shifted[character]);
      await page.keyboard.up("Shift");
    } else await page.keyboard.type(character);
  }
};
/** GET /api/v1/vms/{vm}/screenshot with the page's session: { status, type, png (a Buffer) }. */
const screenshotOf = async (page, vm) => {
  const answer = await page.evaluate(async (name) => {
    const response = await fetch(`/api/v1/vms/${name}/screenshot`, { credentials: "same-origin" });
    const bytes = new Uint8Array(await response.arrayBuffer());
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return { status: response.status, type: response.headers.get("content-type"), data: btoa(binary) };
  }, vm);
  return { status: answer.status, type: answer.type, png: Buffer.from(answer.data, "base64") };
};
/** The screen's text as tesseract reads the screenshot API's PNG. */
const screenText = async (page, vm) => {
  const { png } = await screenshotOf(page, vm);
  const file = `${shots}/ocr.png`;
  writeFileSync(file, png);
  try {
    return execFileSync("tesseract", [file, "stdout"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] });
  } catch {
    return "";
  }
};
/** Whether OCR'd `text` has `word` (then, if given, `suffix`, a regular expression, after at most
 *  one sign): tesseract misreads a letter of the console's small font now and then (v as y, m as
 *  n), so two of the word's letters may differ; suffixes allow the digits' misreadings (2 as z). */
const ocrHas = (text, word, suffix = "") =>
  (text.match(new RegExp(`[A-Za-z]{${word.length}}${suffix ? `\\W?${suffix}` : ""}`, "g")) ?? []).some((found) =>
    [...found.slice(0, word.length).toLowerCase()].filter((c, i) => c !== word[i]).length <= 2);
/** Records the page's requests, how they ended and what its console said; report() tells what
 *  is still pending, what failed and what the page shows, for a check that found nothing (CI keeps
 *  only the FAIL lines of a run, so the reason has to be in one). */
const watchNetwork = (page) => {
  const started = new Map();
  const ended = [];
  const consoleLines = [];
  const end = (request, how) => {
    ended.push(`${request.method()} ${request.url().replace(url, "")} ${how} after ${Date.now() - started.get(request)} ms`);
    started.delete(request);
  };
  page.on("request", (request) => started.set(request, Date.now()));
  page.on("requestfinished", (request) => end(request, String(request.response()?.status())));
  page.on("requestfailed", (request) => end(request, `failed: ${request.failure()?.errorText}`));
  page.on("console", (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
  return {
    report: async (pageErrors) => {
      const pending = [...started].map(([request, at]) => `${request.method()} ${request.url().replace(url, "")} for ${Date.now() - at} ms`);
      const shown = await page.evaluate(() => document.body?.innerHTML.slice(0, 300) ?? "no body").catch((error) => String(error));
      return `requests: ${ended.join(", ") || "none ended"}; pending: ${pending.join(", ") || "none"}; ` +
        `script errors: ${pageErrors.join("; ") || "none"}; console: ${consoleLines.join(" | ") || "nothing"}; page: ${shown}`
        .replace(/\s+/g, " ");
    },
  };
};
/** Which libraries a page's scripts and style sheets hold, found by the libraries' own class names in
 *  the bodies (not by file names: a static import would put them back into the main bundle under
 *  its own name). loaded() gives [{ url, has: [names], error }] of all so far. */
const libraries = { xterm: "xterm-helper-textarea", uPlot: "u-legend" };
const watchCode = (page) => {
  const bodies = [];
  page.on("response", (response) => {
    const type = response.request().resourceType();
    if (type !== "script" && type !== "stylesheet") return;
    bodies.push(response.text().then(
      (text) => ({ url: response.url(), has: Object.keys(libraries).filter((name) => text.includes(libraries[name])),
        encoding: response.headers()["content-encoding"] ?? "" }),
      (error) => ({ url: response.url(), has: [], error: String(error) })));
  });
  return { loaded: () => Promise.all(bodies) };
};
const withLibrary = (code, name) => code.filter((each) => each.has.includes(name)).map((each) => each.url);
/** The VM's page in a second tab whose xterm.js and uPlot chunks answer 404 (as when corrald was
 *  restarted with a newer build and the page asks for the old hashed names): each card says so. */
async function chunkFailureChecks(vmName, chunks) {
  const page = await browser.newPage();
  try {
    const errors = [];
    page.on("pageerror", (error) => errors.push(String(error)));
    await page.setCacheEnabled(false);
    await page.setRequestInterception(true);
    page.on("request", (request) => (chunks.includes(request.url())
      ? request.respond({ status: 404, contentType: "text/plain", body: "Not found" }) : request.continue()));
    await page.goto(`${url}/#/vms/${vmName}`);
    const noteOf = () => page.$eval(".console", (e) => `${e.dataset.state}: ${e.textContent}`).catch((error) => String(error));
    check("a console whose code does not load (404) says so in its card: reload the page",
      await until(page, () => /reload the page/.test(document.querySelector(".console[data-state=failed] .console-note")?.textContent ?? ""),
        15000), await noteOf());
    check("  ... and so does each chart", await until(page, () => {
      const charts = [...document.querySelectorAll("figure.chart")];
      return charts.length >= 4 && charts.every((chart) => chart.dataset.state === "failed" && /reload the page/.test(chart.textContent));
    }, 15000), await page.$$eval("figure.chart", (charts) => charts.map((c) => `${c.dataset.state}: ${c.textContent}`).join(" | ")));
    check("  ... with a Reload button, and no error escaped the page's scripts",
      (await page.$$(".console .chunk-failed button")).length === 1 && errors.length === 0, errors.join("; "));
    await shot(page, "vm-code-not-loaded");
  } finally {
    await page.close();
  }
}
/** Clicks `selector` until the page shows the click took (`took`, run in the page, within 10 s
 *  each time), up to three times: the snapshot list is drawn again on each of the VM's events, and
 *  a click that lands just as its row is replaced goes to a button no longer on the page. */
const clickUntil = async (page, selector, took) => {
  for (let attempt = 0; attempt < 3; attempt++) {
    // Found and clicked in one step in the page: no row can be replaced in between.
    await page.evaluate((target) => document.querySelector(target)?.click(), selector);
    if (await until(page, took, 10000)) return true;
  }
  return false;
};
/** Reads the screen until `pattern` (a RegExp, or a function of the text) shows (true) or `timeout` ms passed (false); last text in `seen.text`. */
const untilScreen = async (page, vm, pattern, timeout, seen = {}) => {
  const end = Date.now() + timeout;
  do {
    seen.text = await screenText(page, vm);
    if (typeof pattern === "function" ? pattern(seen.text) : pattern.test(seen.text)) return true;
  } while (Date.now() < end);
  return false;
};
/** In the page: a raw RFB viewer on /vnc?view_only=1 (no noVNC, which drops a view-only viewer's
 *  keys itself) that types `text` as KeyEvents; corrald's relay must drop them. Resolves when sent. */
const typeAsViewOnlyViewer = (page, vm, text) => page.evaluate((name, text) => new Promise((resolve, reject) => {
  const socket = new WebSocket(`wss://${location.host}/api/v1/vms/${name}/vnc?view_only=1`);
  socket.binaryType = "arraybuffer";
  let buffer = new Uint8Array(0);
  let step = 0;
  const send = (...bytes) => socket.send(new Uint8Array(bytes));
  socket.onerror = () => reject(new Error("the view-only WebSocket failed"));
  socket.onmessage = (message) => {
    const data = new Uint8Array(message.data);
    const joined = new Uint8Array(buffer.length + data.length);
    joined.set(buffer);
    joined.set(data, buffer.length);
    buffer = joined;
    const take = (n) => {
      if (buffer.length < n) return null;
      const head = buffer.slice(0, n);
      buffer = buffer.slice(n);
      return head;
    };
    for (;;) {
      if (step === 0) {                                    // ProtocolVersion
        if (!take(12)) return;
        socket.send(new TextEncoder().encode("RFB 003.008\n"));
        step = 1;
      } else if (step === 1) {                             // security types: choose None
        if (buffer.length < 1 || buffer.length < 1 + buffer[0]) return;
        const types = take(1 + buffer[0]).slice(1);
        if (!types.includes(1)) return reject(new Error(`no security type None: ${types}`));
        send(1);
        step = 2;
      } else if (step === 2) {                             // SecurityResult, then ClientInit (shared)
        if (!take(4)) return;
        send(1);
        step = 3;
      } else if (step === 3) {                             // ServerInit: 24 bytes and the name
        if (buffer.length < 24) return;
        const nameLength = new DataView(buffer.buffer, buffer.byteOffset + 20, 4).getUint32(0);
        if (!take(24 + nameLength)) return;
        for (const character of text) {
          const keysym = character === "\n" ? 0xff0d : character.charCodeAt(0);
          for (const down of [1, 0]) send(4, down, 0, 0, (keysym >> 24) & 255, (keysym >> 16) & 255, (keysym >> 8) & 255, keysym & 255);
        }
        step = 4;
        resolve();
      } else {
        buffer = new Uint8Array(0);                        // screen updates: not read
        return;
      }
    }
  };
  window.viewOnlyViewer = socket;
}), vm, text);
const consoleText = (page) => page.$eval(".xterm-rows", (rows) => rows.textContent ?? "").catch(() => "");

/** The Screen tab on the running VM (created with a 1024x768 display): noVNC connects; typed,
 *  pasted-as-typing and view-only text are read back from the screenshot API with tesseract. */
async function screenChecks(page) {
  console.log("== the screen (noVNC through corrald)");
  await page.click("[data-tab=screen]");
  check("the Screen tab connects", await until(page, () => document.querySelector(".screen")?.dataset.state === "connected", 30000),
    await page.$eval(".screen .console-note", (note) => note.textContent).catch(() => ""));
  check("  ... noVNC's canvas is the display's size, 1024x768",
    await until(page, () => document.querySelector(".screen canvas")?.width === 1024 &&
      document.querySelector(".screen canvas")?.height === 768, 10000),
    await page.$eval(".screen canvas", (canvas) => `${canvas.width}x${canvas.height}`).catch(() => "no canvas"));
  const screenshot = await screenshotOf(page, vm);
  check("the screenshot API answers a 1024x768 PNG",
    screenshot.status === 200 && screenshot.type === "image/png" && screenshot.png.readUInt32BE(16) === 1024 &&
      screenshot.png.readUInt32BE(20) === 768, `${screenshot.status} ${screenshot.type} ${screenshot.png.length} bytes`);
  const seen = {};
  check("  ... tesseract reads the shell's prompt on tty1", await untilScreen(page, vm, /corral:/, 60000, seen),
    seen.text?.slice(-300));
  const typed = randomWord();
  await page.click(".screen canvas");
  await typeUs(page, `echo ${typed}-$((6*7))\n`);
  check(`typed on the canvas: 'echo ${typed}' shows on the screen`,
    await untilScreen(page, vm, (text) => ocrHas(text, typed, "4[2zZ]"), 30000, seen), seen.text?.slice(-300));
  await shot(page, "screen", false);
  // View only: the keys go nowhere (noVNC drops them, and corrald's relay drops what a viewer on
  // ?view_only=1 sends anyway: a raw RFB viewer checks that). Then paste as typing with the
  // view-only box cleared: once its word shows, the view-only words, typed first, would have too.
  const unseen = randomWord();
  const unseenRaw = randomWord();
  let rawSent = true;
  await typeAsViewOnlyViewer(page, vm, `echo ${unseenRaw}\n`).catch((error) => (rawSent = String(error)));
  check("a raw RFB viewer on ?view_only=1 connects and sends its keys", rawSent === true, rawSent);
  await setViewOnly(page, true);
  check("view only: connected again, view only", await until(page, () => document.querySelector(".screen")?.dataset.state ===
    "connected" && /view only/.test(document.querySelector(".screen .console-note")?.textContent ?? ""), 30000));
  await page.click(".screen canvas");
  await page.keyboard.type(`echo ${unseen}\n`);
  await setViewOnly(page, false);
  check("view only cleared: connected again, taking input",
    await until(page, () => document.querySelector(".screen")?.dataset.state === "connected" &&
      !/view only/.test(document.querySelector(".screen .console-note")?.textContent ?? ""), 30000),
    await page.$eval(".screen", (e) => `${e.dataset.state}, view only ${document.querySelector("#screen-view-only")?.checked}: ` +
      (e.querySelector(".console-note")?.textContent ?? "")));
  const pasted = randomWord();
  await page.type("#screen-text", `echo ${pasted}-$((6*8))\n`);
  await page.click(".screen-type button[type=submit]");
  check("paste as typing: its line shows on the screen",
    await untilScreen(page, vm, (text) => ocrHas(text, pasted, "4[8B]"), 30000, seen), seen.text?.slice(-300));
  check(`  ... and the line typed in view-only mode ('${unseen}') does not`, !ocrHas(seen.text, unseen), seen.text?.slice(-300));
  check(`  ... nor the raw view-only viewer's ('${unseenRaw}')`, !ocrHas(seen.text, unseenRaw), seen.text?.slice(-300));
  // Send keys: Ctrl-C from the menu stops a ten-minute sleep, so the line typed after it runs now,
  // and the rest of the sleep's line never does (without the Ctrl-C neither would show in time).
  // The lines write to the serial console, read back through the API: exact text, no OCR.
  const never = randomWord();
  const after = randomWord();
  const pasteAndWait = async (text) => {
    const before = await page.$eval(".screen", (screen) => Number(screen.dataset.typed ?? 0));
    await page.$eval("#screen-text", (area) => (area.value = ""));
    await page.type("#screen-text", text);
    await page.click(".screen-type button[type=submit]");
    return until(page, (count) => Number(document.querySelector(".screen").dataset.typed ?? 0) > count, 30000, before);
  };
  const serialHas = (text) => page.evaluate(async (name, wanted) => {
    const response = await fetch(`/api/v1/vms/${name}/console?tail=200`, { credentials: "same-origin" });
    return (await response.text()).includes(wanted);
  }, vm, text);
  check("paste as typing: 'sleep 600; echo ...' typed",
    await pasteAndWait(`sleep 600; echo ${never}-$((5*9)) >/dev/ttyS0\n`));
  await page.select("#screen-keys", String(await page.$eval("#screen-keys", (select) =>
    [...select.options].find((option) => option.textContent === "Ctrl-C")?.value ?? "")));
  // Up to three Ctrl-Cs: one that reaches the guest before its shell has put the sleep in the
  // foreground interrupts the shell instead. A Ctrl-C that stops the sleep also drops the
  // typed-ahead line, so the line is typed again after each.
  let interrupted = false;
  for (let attempt = 0; attempt < 3 && !interrupted; attempt++) {
    await page.click("[data-action=send-keys]");
    await pasteAndWait(`echo ${after}-$((7*6)) >/dev/ttyS0\n`);
    const deadline = Date.now() + 20000;
    while (!interrupted && Date.now() < deadline) {
      interrupted = await serialHas(`${after}-42`);
      if (!interrupted) await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
  check("send keys: Ctrl-C stops the sleep and the next line runs", interrupted);
  check(`  ... and the rest of the interrupted line ('${never}') does not`, !(await serialHas(`${never}-45`)));
  await page.evaluate(() => window.viewOnlyViewer?.close());
  await page.click("[data-tab=serial]");
  check("back on the serial console: the screen's connection is closed",
    await until(page, () => document.querySelector(".screen")?.dataset.state !== "connected" &&
      !document.querySelector(".screen canvas"), 10000));
}

/** GET `path` with the page's session; { status, bytes (a Buffer) }. */
const fetchBytes = async (page, path) => {
  const answer = await page.evaluate(async (path) => {
    const response = await fetch(path, { credentials: "same-origin" });
    const bytes = new Uint8Array(await response.arrayBuffer());
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    return { status: response.status, data: btoa(binary) };
  }, path);
  return { status: answer.status, bytes: Buffer.from(answer.data, "base64") };
};
/** Clicks what the selector finds at the moment of the click: the lists re-render on every event,
 *  and a button found first and clicked after may be gone from the page by then. */
const clickNow = (page, selector) => page.$eval(selector, (e) => e.click());
/** Ticks or clears the Screen's view-only box until it is so: the box is drawn again as the
 *  screen reconnects, and a click that landed on the old one is lost (seen under load). */
const setViewOnly = (page, wanted) => until(page, (wanted) => {
  const box = document.querySelector("#screen-view-only");
  if (box && !box.disabled && box.checked !== wanted) box.click();
  return box?.checked === wanted;
}, 10000, wanted);
/** Sets an input's value as a person would: cleared, then typed. */
const retype = async (page, selector, text) => {
  await page.$eval(selector, (input) => (input.value = ""));
  await page.type(selector, text);
};

/** The VM page's memory card (web/src/pages/vm_balloon.ts) on the running 256 MiB VM: its chart
 *  draws the guest's memory, the form sets a target that corrald keeps and the page shows, and
 *  Clear removes it again (the rest of the scenario runs with all the guest's memory). */
const balloonChecks = async (page, vm) => {
  console.log("== the balloon target (the memory card)");
  check("the memory card's chart has the guest's memory", await until(page, () =>
    Number(document.querySelector(".balloon-view figure.chart")?.dataset.points) >= 2, 30000));
  await retype(page, ".balloon-view [data-field=target_mib] input", "192");
  await page.click(".balloon-view button[type=submit]");
  check("the form sets the balloon target: the page shows it kept", await until(page, () =>
    document.querySelector(".balloon-view")?.dataset.kept === "192" &&
    /Target kept: 192 MiB of 256 MiB/.test(document.querySelector(".balloon-facts")?.textContent ?? ""), 15000),
  await page.$eval(".balloon-view", (e) => e.textContent));
  check("  ... and corrald keeps it with the VM", await page.evaluate(async (name) =>
    (await (await fetch(`/api/v1/vms/${name}`)).json()).balloon_target_mib === 192, vm));
  // The card once the balloon inflated towards the target (the guest's available memory drops under it).
  await until(page, () => /guest has 19\d MiB now/.test(document.querySelector(".balloon-facts")?.textContent ?? ""), 30000);
  await (await page.$(".balloon-view")).screenshot({ path: `${shots}/balloon.png` });
  await page.click(".balloon-view button[data-action=clear-balloon]");
  check("  ... Clear removes it", await until(page, () => document.querySelector(".balloon-view")?.dataset.kept === "" &&
    /No balloon target kept/.test(document.querySelector(".balloon-facts")?.textContent ?? ""), 15000),
  await page.$eval(".balloon-view", (e) => e.textContent));
};

/** The VM page's Snapshots tab on the running VM: a bad name's message at its field, a snapshot
 *  taken (a task) and listed as the current one, a taken name's 409 at the field. */
async function snapshotChecks(page) {
  console.log("== snapshots (the VM page's Snapshots tab)");
  await page.click("[data-tab=snapshots]");
  const name = ".snapshots-view [data-field=name] input";
  const error = ".snapshots-view [data-field=name] .field-error";
  await retype(page, name, "no spaces!");
  await page.click(".snapshots-view button[type=submit]");
  check("a bad snapshot name: the API's message at the name field",
    await until(page, (selector) => document.querySelector(selector)?.textContent !== "", 10000, error),
    await page.$eval(".snapshots-view .status", (e) => e.textContent));
  console.log(`  the message: ${await page.$eval(error, (e) => e.textContent)}`);
  await retype(page, name, "first");
  await page.type(".snapshots-view [data-field=description] input", "from the browser");
  await page.click(".snapshots-view button[type=submit]");
  check("a snapshot of the running VM: listed, ready and current",
    await until(page, () => {
      const row = document.querySelector("tr[data-snapshot=first]");
      return row?.dataset.current === "true" && row.querySelector("[data-label=Status]")?.textContent === "ready";
    }, 120000), await page.$eval(".snapshots-view", (e) => e.textContent).catch(() => ""));
  check("  ... the task's end was shown", await until(page, () =>
    /first: taken/.test(document.querySelector(".snapshots-view .status")?.textContent ?? ""), 10000),
  await page.$eval(".snapshots-view .status", (e) => e.textContent));
  await retype(page, name, "first");
  await page.click(".snapshots-view button[type=submit]");
  check("  ... the same name again: the 409's message at the name field",
    await until(page, (selector) => /first/.test(document.querySelector(selector)?.textContent ?? ""), 10000, error),
    await page.$eval(".snapshots-view .status", (e) => e.textContent));
  await page.$eval(name, (input) => (input.value = ""));
  await page.$eval(".snapshots-view [data-field=description] input", (input) => (input.value = ""));
}

/** On the stopped VM: a disk snapshot taken, drawn under the first one (the current one when it
 *  was taken), then restored through its Restore button (after the confirm, which the page's
 *  dialog handler accepts); the first one deleted. */
async function restoreChecks(page) {
  console.log("== restore a snapshot (the VM stopped)");
  await page.click("[data-tab=snapshots]");
  await until(page, () => document.querySelector(".snapshots-view tbody tr"), 10000);
  await retype(page, ".snapshots-view [data-field=name] input", "stopped");
  await page.click(".snapshots-view button[type=submit]");
  check("a snapshot of the stopped VM: a disk snapshot, ready and current", await until(page, () => {
    const row = document.querySelector("tr[data-snapshot=stopped]");
    return row?.dataset.current === "true" && row.querySelector("[data-label=Kind]")?.textContent === "disk" &&
      row.querySelector("[data-label=Status]")?.textContent === "ready" && !row.querySelector("[data-action=restore]").disabled;
  }, 60000), await page.$eval(".snapshots-view", (e) => e.textContent).catch(() => ""));
  check("  ... drawn under the first one", await page.$eval("tr[data-snapshot=stopped] .tree", (e) => e.textContent.startsWith("└")) &&
    await page.$$eval(".snapshots-view tbody tr", (rows) => rows.map((row) => row.dataset.snapshot).join(",")) === "first,stopped");
  await clickUntil(page, "tr[data-snapshot=stopped] [data-action=restore]",
    () => /restor/.test(document.querySelector(".snapshots-view .status")?.textContent ?? ""));
  check("  ... restored from its Restore button", await until(page, () =>
    /stopped: restored/.test(document.querySelector(".snapshots-view .status")?.textContent ?? ""), 60000),
  await page.$eval(".snapshots-view .status", (e) => e.textContent));
  const card = (await page.$("#panel-snapshots")).evaluateHandle((panel) => panel.closest("section"));
  await (await card).asElement().screenshot({ path: `${shots}/vm-snapshots.png` });
  await clickUntil(page, "tr[data-snapshot=first] [data-action=delete-snapshot]",   // the confirm is accepted
    () => /first: delet|delete first/.test(document.querySelector(".snapshots-view .status")?.textContent ?? ""));
  check("the first snapshot deleted: gone from the list",
    await until(page, () => !document.querySelector("tr[data-snapshot=first]") && /first: deleted/.test(
      document.querySelector(".snapshots-view .status")?.textContent ?? ""), 30000));
  check("  ... the restored one stays, current", await page.$eval("tr[data-snapshot=stopped]", (row) => row.dataset.current === "true"));
}

/** The VM page's Network tab: the NIC's network, MAC and address as the API has them. */
async function nicChecks(page) {
  console.log("== the VM's NICs (the Network tab)");
  await page.focus("[data-tab=snapshots]");
  await page.keyboard.press("ArrowRight");
  check("the tabs follow the arrow keys: ArrowRight opens the Network tab and focuses it", await page.evaluate(() =>
    document.activeElement?.dataset.tab === "nics" && !document.querySelector("#panel-nics").hidden &&
    document.querySelector("#panel-snapshots").hidden));
  const { bytes } = await fetchBytes(page, `/api/v1/vms/${vm}`);
  const nic = JSON.parse(bytes.toString()).nics[0];
  check("the NIC row shows the VM's network, MAC and address",
    await until(page, (nic) => {
      const row = document.querySelector("tr[data-nic='0']");
      return row && row.querySelector("[data-label=Address]")?.textContent === nic.ipv4 &&
        row.textContent.includes(nic.mac) && row.querySelector("[data-label=Network]")?.textContent === nic.network;
    }, 10000, nic), `${JSON.stringify(nic)} vs ${await page.$eval("tr[data-nic='0']", (e) => e.textContent).catch(() => "no row")}`);
  check("  ... and its security groups (none ticked), editable", await page.$$eval("tr[data-nic='0'] form.groups input[type=checkbox]",
    (boxes) => boxes.length > 0 && boxes.every((box) => !box.checked)));
  await page.click("tr[data-nic='0'] form.groups input[value=default]");
  await page.click("tr[data-nic='0'] form.groups button[type=submit]");
  await until(page, () => /NIC #0: groups default/.test(document.querySelector(".nics-view .status")?.textContent ?? ""), 10000);
  const after = JSON.parse((await fetchBytes(page, `/api/v1/vms/${vm}`)).bytes.toString()).nics[0];
  check("  ... ticking 'default' and Apply puts the group on the running VM's NIC", JSON.stringify(after.groups) === '["default"]',
    JSON.stringify(after));
  await page.click("[data-tab=snapshots]");
}

/** The Networks page: the default network listed; a bad subnet's (and IPv6 subnet's) message at
 *  its field; an isolated network with an IPv6 subnet made, listed and deleted; the default one, in use, cannot be (409 shown). */
async function networkChecks(page, networked) {
  console.log("== the Networks page");
  await page.goto(`${url}/#/networks`);
  await until(page, () => document.querySelector("table.networks tbody tr"), 10000);
  if (networked) {
    check("the default network is listed with its VM",
      await until(page, (name) => document.querySelector("tr[data-network=default]")?.textContent.includes(name), 10000, vm));
  }
  await page.type(".network-form [data-field=name] input", "lab");
  await page.select(".network-form [data-field=kind] select", "isolated");
  await retype(page, ".network-form [data-field=subnet4] input", "10.77.0.0/33");
  await page.click(".network-form button[type=submit]");
  check("a bad subnet: the API's message at the subnet field",
    await until(page, () => document.querySelector(".network-form [data-field=subnet4] .field-error")?.textContent !== "", 10000),
    await page.$eval("main .status", (e) => e.textContent));
  console.log(`  the message: ${await page.$eval(".network-form [data-field=subnet4] .field-error", (e) => e.textContent)}`);
  if (!networked) {
    console.log("SKIP: making networks (not in a network namespace of the test's own)");
    return;
  }
  await retype(page, ".network-form [data-field=subnet4] input", "10.77.0.0/24");
  await retype(page, ".network-form [data-field=subnet6] input", "fd00:77::/48");
  await page.click(".network-form button[type=submit]");
  check("an IPv6 subnet that is not a /64: the API's message at its field",
    await until(page, () => /\/64/.test(document.querySelector(".network-form [data-field=subnet6] .field-error")?.textContent ?? ""), 10000),
    await page.$eval("main .status", (e) => e.textContent));
  await retype(page, ".network-form [data-field=subnet6] input", "fd00:77::/64");
  await page.click(".network-form button[type=submit]");
  check("an isolated network made: listed with its kind and both subnets",
    await until(page, () => /isolated.*10\.77\.0\.0\/24 fd00:77::\/64/.test(document.querySelector("tr[data-network=lab]")?.textContent ?? ""), 30000),
    await page.$eval("main .status", (e) => e.textContent));
  await networkEditChecks(page);
  await page.click("tr[data-network=default] [data-action=leases]");
  check("  ... the default network's leases open", await until(page, () =>
    /Leases on default/.test(document.querySelector("#leases-title")?.textContent ?? ""), 10000));
  await shot(page, "networks");
  await page.click("tr[data-network=default] [data-action=delete-network]");
  check("deleting the default network, which the VM uses: the 409's message",
    await until(page, () => /delete default: .*(use|VM|webui1)/i.test(document.querySelector("main .status")?.textContent ?? ""), 10000),
    await page.$eval("main .status", (e) => e.textContent));
  await page.click("tr[data-network=lab] [data-action=delete-network]");
  check("  ... the isolated one is deleted", await until(page, () => !document.querySelector("tr[data-network=lab]") &&
    document.querySelector("tr[data-network=default]"), 30000), await page.$eval("main .status", (e) => e.textContent));
}

/** GET `path` with the page's session: the API's JSON. */
const apiGet = (page, path) => page.evaluate(async (path) => (await fetch(path)).json(), path);

/** The default network's Edit form: a DHCP start that is no address, and a bad DNS forwarder (the
 *  API names "dns_forwarders[1]"), each at its field with nothing applied; then a narrower DHCP
 *  range saved, shown in the list and read back from the API. */
async function networkEditChecks(page) {
  const before = await apiGet(page, "/api/v1/networks/default");
  const prefix = before.subnet4.split(".").slice(0, 3).join(".");
  const edit = ".network-edit-form[data-network=default]";
  await page.click("tr[data-network=default] [data-action=edit-network]");
  check("the default network's Edit form opens with its DHCP range", await until(page, (edit, start) =>
    document.querySelector(`${edit} [data-field=dhcp_start] input`)?.value === start, 5000, edit, before.dhcp_start));
  await retype(page, `${edit} [data-field=dhcp_start] input`, `${prefix}.300`);
  await page.click(`${edit} button[type=submit]`);
  check("  ... a DHCP start that is no address: the API's message at its field",
    await until(page, (edit) => /dhcp_start .* is not an IPv4 address/.test(
      document.querySelector(`${edit} [data-field=dhcp_start] .field-error`)?.textContent ?? ""), 10000, edit),
    await page.$eval("main .status", (e) => e.textContent));
  await shot(page, "network-edit");
  await retype(page, `${edit} [data-field=dhcp_start] input`, `${prefix}.200`);
  await retype(page, `${edit} [data-field=dns_forwarders] input`, "192.0.2.53, nowhere");
  await page.click(`${edit} button[type=submit]`);
  check("  ... a DNS forwarder that is no address: the API's message (dns_forwarders[1]) at the forwarders' field",
    await until(page, (edit) => /dns_forwarders\[1\] 'nowhere'/.test(
      document.querySelector(`${edit} [data-field=dns_forwarders] .field-error`)?.textContent ?? ""), 10000, edit),
    await page.$eval("main .status", (e) => e.textContent));
  const unchanged = await apiGet(page, "/api/v1/networks/default");
  check("  ... and nothing of that edit applied", unchanged.dhcp_start === before.dhcp_start &&
    unchanged.dns_forwarders.length === 0, JSON.stringify(unchanged));
  await retype(page, `${edit} [data-field=dns_forwarders] input`, "");
  await page.click(`${edit} button[type=submit]`);
  const range = `${prefix}.200 - ${before.dhcp_end}`;
  check(`  ... the DHCP range narrowed to ${range}: shown in the list`, await until(page, (range) =>
    document.querySelector("tr[data-network=default] [data-label='DHCP range']")?.textContent === range, 30000, range),
    await page.$eval("main .status", (e) => e.textContent));
  const after = await apiGet(page, "/api/v1/networks/default");
  check("  ... and the API has it", after.dhcp_start === `${prefix}.200` && after.dhcp_end === before.dhcp_end, JSON.stringify(after));
}

/** Migration of the running VM: its Migrate form; an http:// destination refused at its field; an
 *  unreachable one fails the task, whose words (nothing moved, the VM runs on here) the page
 *  shows, the VM still running. Then the destination's half: an incoming migration prepared here
 *  with a token (POST /migrations, as a source's corrald calls it) shows its VM migrating-in in
 *  the list and on its page, with no actions, until it is discarded (DELETE /migrations/ID). */
async function migrateChecks(page) {
  console.log("== migration");
  await page.goto(`${url}/#/vms/${vm}`);
  await until(page, () => document.querySelector("button[data-action=migrate]:not([disabled])"), 10000);
  await page.click("button[data-action=migrate]");
  const form = ".migrate-form";
  check("Migrate on the running VM opens its form: destination (focused), token, downtime, bandwidth",
    await until(page, (form) => document.activeElement?.closest(`${form} [data-field=to]`) &&
      ["token", "downtime_ms", "bandwidth_mib", "fingerprint"].every((name) => document.querySelector(`${form} [data-field=${name}] input`)),
    5000, form));
  await page.type(`${form} [data-field=to] input`, "http://127.0.0.1:1");
  await page.type(`${form} [data-field=token] input`, "corral_elsewhere");
  await page.type(`${form} [data-field=bandwidth_mib] input`, "64");
  await page.click(`${form} button[type=submit]`);
  check("  ... an http:// destination: the API's message at the destination field",
    await until(page, (form) => /https:\/\//.test(document.querySelector(`${form} [data-field=to] .field-error`)?.textContent ?? ""), 10000, form),
    await page.$eval(".migrate-view .status", (e) => e.textContent));
  await retype(page, `${form} [data-field=to] input`, "https://127.0.0.1:1");
  await page.click(`${form} button[type=submit]`);
  check("  ... an unreachable one: the task's failure in the page (nothing moved, it runs on here)",
    await until(page, (name) => new RegExp(`failed: https://127\\.0\\.0\\.1:1: .*nothing moved, ${name} runs on here`)
      .test(document.querySelector(".migrate-view[data-state=failed] .status")?.textContent ?? ""), 30000, vm),
    await page.$eval(".migrate-view", (e) => `${e.dataset.state}: ${e.textContent}`));
  console.log(`  the page says: ${await page.$eval(".migrate-view .status", (e) => e.textContent)}`);
  await (await page.$(".migrate-view")).screenshot({ path: `${shots}/vm-migrate.png` });
  check("  ... and the VM runs on", (await apiGet(page, `/api/v1/vms/${vm}`)).state === "running" &&
    await page.$eval(".badge", (e) => e.textContent === "running") && !(await page.$("[data-migration=out]")));

  const prepared = await page.evaluate(async (token) => {
    const response = await fetch("/api/v1/migrations", { method: "POST",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: JSON.stringify({ name: "arrival", image: "debian", memory_mib: 128, nics: [],
        migration: { origin: "browser-test", pools: [] } }) });
    return { status: response.status, body: await response.json() };
  }, token);
  check("an incoming migration prepared here (POST /migrations): 201, migrating-in",
    prepared.status === 201 && prepared.body.state === "migrating-in", JSON.stringify(prepared));
  await page.goto(`${url}/#/vms`);
  check("  ... the VM list shows its VM migrating-in, with no actions", await until(page, () => {
    const row = document.querySelector("tr[data-vm=arrival]");
    return row?.querySelector(".badge")?.textContent === "migrating-in" && !row.querySelector("[data-label=Actions] button");
  }, 10000), await page.$eval("tbody", (e) => e.textContent));
  await page.goto(`${url}/#/vms/arrival`);
  check("  ... and its page: migrating-in, arriving from browser-test; Migrate and Delete disabled", await until(page, () =>
    document.querySelector(".badge")?.textContent === "migrating-in" &&
    /arriving from browser-test/.test(document.querySelector("#summary-title")?.parentElement?.textContent ?? "") &&
    document.querySelector("button[data-action=migrate]")?.disabled && document.querySelector("button[data-action=delete]")?.disabled, 10000),
    await page.$eval("main", (e) => e.textContent.slice(0, 300)));
  await shot(page, "vm-arriving", false);
  const discarded = await page.evaluate(async (token, id) => {
    const response = await fetch(`/api/v1/migrations/${id}`, { method: "DELETE", headers: { Authorization: `Bearer ${token}` } });
    return response.status;
  }, token, prepared.body.id);
  check("  ... discarded (DELETE /migrations/ID): its page says there is no such VM",
    discarded === 200 && await until(page, () => /There is no VM named arrival/.test(document.querySelector("main")?.textContent ?? ""), 15000),
    String(discarded));
}

/** A real migration from the browser: the VM "mover" (tests/e2e/web_ui.sh runs it on this corrald,
 *  its disk in a folder a second corrald shares) moved to that corrald with the Migrate form; the
 *  page ends on the move with the task's measured figures and a link to the VM on its new host. */
async function realMigrationChecks(page) {
  const dest = process.env.CORRAL_DEST_URL;
  if (!dest) {
    console.log("SKIP: a real migration (no second corrald: CORRAL_DEST_URL)");
    return;
  }
  console.log("== a real migration to a second corrald");
  await page.goto(`${url}/#/vms/mover`);
  await until(page, () => document.querySelector("button[data-action=migrate]:not([disabled])"), 10000);
  await page.click("button[data-action=migrate]");
  const form = ".migrate-form";
  await until(page, (form) => document.querySelector(`${form} [data-field=to] input`), 5000, form);
  await page.type(`${form} [data-field=to] input`, dest);
  await page.type(`${form} [data-field=token] input`, process.env.CORRAL_DEST_TOKEN);
  await page.type(`${form} [data-field=fingerprint] input`, process.env.CORRAL_DEST_FINGERPRINT);
  await page.click(`${form} button[type=submit]`);
  check(`mover migrated to ${dest} from its page: the page ends on the move, with the measured figures`,
    await until(page, () => {
      const moved = document.querySelector("section.migrated");
      return /mover runs on https:.* now: \d+ ms in all/.test(moved?.textContent ?? "") &&
        ["total", "downtime", "bytes", "rounds"].every((figure) => moved.querySelector(`[data-figure=${figure}]`)?.textContent);
    }, 120000), await page.$eval("main", (e) => e.textContent.slice(0, 400)));
  console.log(`  the page says: ${await page.$eval("main", (e) => e.querySelector("section.migrated p")?.textContent ?? "")}`);
  check("  ... with a link to the VM on its new host", await page.$eval("section.migrated a", (a, dest) =>
    a.getAttribute("href") === `${dest}/#/vms/mover`, dest).catch(() => false));
  await shot(page, "vm-migrated", false);
}

/** Storage: a qcow2 made with qemu-img imported from the browser (an upload) is listed with its
 *  size; its export downloads an image qemu-img reads as the same disk. */
async function storageChecks(page) {
  console.log("== storage: import and export");
  await page.goto(`${url}/#/storage`);
  await until(page, () => document.querySelector(".upload-form select option"), 10000);
  const image = `${shots}/upload.qcow2`;
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", image, "24M"]);
  execFileSync("qemu-io", ["-f", "qcow2", "-c", "write -P 0x5a 1M 64k", image], { stdio: "ignore" });
  await (await page.$(".upload-form input[type=file]")).uploadFile(image);
  check("the file's name becomes the volume's name", (await page.$eval(".upload-form [data-field=name] input", (e) => e.value)) === "upload");
  await retype(page, ".upload-form [data-field=name] input", "bad name");
  await page.click(".upload-form button[type=submit]");
  check("a bad volume name: the API's message at the name field",
    await until(page, () => document.querySelector(".upload-form [data-field=name] .field-error")?.textContent !== "", 10000),
    await page.$eval("main .status", (e) => e.textContent));
  await retype(page, ".upload-form [data-field=name] input", "uploaded");
  await page.click(".upload-form button[type=submit]");
  // Waited for: the click returns while the upload is still going (a fresh machine's run read it early).
  check("  ... the upload's progress events reported the whole file sent",
    await until(page, (size) => Number(document.querySelector(".upload-form")?.dataset.sent) === size, 30000,
      statSync(image).size),
    `${await page.$eval(".upload-form", (form) => form.dataset.sent)} of ${statSync(image).size}`);
  check("the imported qcow2 is listed with its size (24 MiB)",
    await until(page, () => document.querySelector("tr[data-volume='default/uploaded'] [data-label=Size]")?.textContent === "24 MiB", 30000),
    await page.$eval("main .status", (e) => e.textContent));
  await shot(page, "storage");
  for (const format of ["qcow2", "raw"]) {
    const href = await page.$eval(`tr[data-volume='default/uploaded'] a[data-export=${format}]`, (a) => a.getAttribute("href"));
    const { status, bytes } = await fetchBytes(page, href);
    const file = `${shots}/exported.${format}`;
    writeFileSync(file, bytes);
    let info = {};
    try {
      info = JSON.parse(execFileSync("qemu-img", ["info", "--output=json", file], { encoding: "utf8" }));
    } catch (error) {
      info = { error: String(error) };
    }
    let same = false;
    try {
      execFileSync("qemu-img", ["compare", "-q", image, file], { stdio: "ignore" });
      same = true;
    } catch {
      same = false;
    }
    check(`export as ${format}: qemu-img reads a ${format} of 24 MiB with the uploaded content`,
      status === 200 && info.format === format && info["virtual-size"] === 24 * 1024 * 1024 && same,
      `${status} ${bytes.length} bytes ${JSON.stringify(info).slice(0, 200)} same=${same}`);
  }
  for (const file of [image, `${shots}/exported.qcow2`, `${shots}/exported.raw`]) rmSync(file, { force: true });
  await page.click("tr[data-volume='default/uploaded'] button.danger");
  await until(page, () => !document.querySelector("tr[data-volume='default/uploaded']"), 10000);
}

/** Backups (the VM stopped): a repository added on the Backups page (a folder outside the ones
 *  corrald allows over the network: the 403 at the path field), the VM backed up from its Backups
 *  tab with the task's progress, verified good, shown to boot (the boot check), restored as a new
 *  VM (a taken name: the 409 at the field), the copy deleted again. */
async function backupChecks(page) {
  console.log("== backups");
  const allowed = process.env.CORRAL_BACKUP_ROOT;
  if (!allowed) {
    console.log("SKIP: backups (no CORRAL_BACKUP_ROOT: corrald allows no folder)");
    return;
  }
  await page.goto(`${url}/#/backups`);
  await until(page, () => document.querySelector("table.repositories tbody tr"), 10000);
  await page.type(".repo-form [data-field=name] input", "main");
  await page.type(".repo-form [data-field=path] input", "/root/corral-web-test-backups");
  await page.click(".repo-form button[type=submit]");
  check("a repository outside the allowed folders: the API's refusal at the folder field",
    await until(page, () => /allow-path/.test(document.querySelector(".repo-form [data-field=path] .field-error")?.textContent ?? ""), 10000),
    await page.$eval("main .status", (e) => e.textContent));
  await retype(page, ".repo-form [data-field=path] input", `${allowed}/repo`);
  await page.click(".repo-form button[type=submit]");
  check("  ... inside one: made and listed, with no backups yet",
    await until(page, () => document.querySelector("tr[data-repository=main] [data-label=Backups]")?.textContent === "0", 10000),
    await page.$eval("main .status", (e) => e.textContent));
  await page.goto(`${url}/#/vms/${vm}`);
  await until(page, () => document.querySelector("[data-tab=backups]"), 10000);
  await page.click("[data-tab=backups]");
  await until(page, () => document.querySelector(".backups-view tbody tr"), 10000);
  await page.click(".backups-view [data-action=backup-now]");
  check("'Back up now' on the VM's Backups tab: a backup listed",
    await until(page, () => document.querySelector(".backups-view tr[data-backup]"), 120000),
    await page.$eval(".backups-view .status", (e) => e.textContent));
  console.log(`  the task said: ${await page.$eval(".backups-view .status", (e) => e.textContent)}`);
  await clickNow(page, ".backups-view tr[data-backup] [data-action=verify]");
  check("  ... verified: good",
    await until(page, () => document.querySelector(".backups-view tr[data-backup] [data-label=Verified]")?.dataset.verify === "ok", 60000),
    await page.$eval(".backups-view .status", (e) => e.textContent));
  await clickNow(page, ".backups-view tr[data-backup] [data-action=boot-check]");
  check("  ... boot check: passed (restored as a throwaway VM, booted to its ready line)",
    await until(page, () => document.querySelector(".backups-view tr[data-backup] [data-label=Booted]")?.dataset.boot === "passed", 240000),
    await page.$eval(".backups-view .status", (e) => e.textContent));
  console.log(`  the boot check said: ${await page.$eval(".backups-view .status", (e) => e.textContent)}`);
  check("  ... and the throwaway VM is gone", await page.evaluate(async () =>
    !(await (await fetch("/api/v1/vms")).json()).some((each) => each.name.startsWith("corral-bootcheck-"))));
  await clickNow(page, ".backups-view tr[data-backup] [data-action=restore]");
  await until(page, () => document.querySelector(".restore-form [data-field=as] input"), 5000);
  await retype(page, ".restore-form [data-field=as] input", vm);
  await page.click(".restore-form button[type=submit]");
  check("  ... restored under a taken name: the API's message at the name field",
    await until(page, () => /exists/.test(document.querySelector(".restore-form [data-field=as] .field-error")?.textContent ?? ""), 10000),
    await page.$eval(".backups-view .status", (e) => e.textContent));
  const copy = `${vm}-copy`;
  await retype(page, ".restore-form [data-field=as] input", copy);
  await page.click(".restore-form button[type=submit]");
  check("  ... restored as a new VM, linked from the message",
    await until(page, (name) => document.querySelector(`.backups-view .status a[href="#/vms/${name}"]`), 120000, copy),
    await page.$eval(".backups-view .status", (e) => e.textContent));
  await page.goto(`${url}/#/backups`);
  check("the Backups page lists the backup with its VM",
    await until(page, (name) => document.querySelector(".backups-view tr[data-backup] [data-label=VM]")?.textContent === name, 10000, vm));
  await page.click(".prune-form button[type=submit]");
  check("prune without a keep rule: the API's message at the keep-last field",
    await until(page, () => /at least one/.test(document.querySelector(".prune-form [data-field=keep_last] .field-error")?.textContent ?? ""), 10000),
    await page.$eval("main .status", (e) => e.textContent));
  await page.type(".prune-form [data-field=keep_daily] input", "1");
  await page.click(".prune-form button[type=submit]");
  check("  ... keep-daily 1, only shown: the one backup would stay",
    await until(page, () => /main: prune would keep 1 and remove 0/.test(document.querySelector("main .status")?.textContent ?? ""), 10000),
    await page.$eval("main .status", (e) => e.textContent));
  await shot(page, "backups");
  await page.goto(`${url}/#/vms/${copy}`);
  await until(page, () => document.querySelector("button[data-action=delete]:not([disabled])"), 10000);
  await page.click("button[data-action=delete]");
  check("  ... the restored copy deleted", await until(page, () => location.hash === "#/vms", 15000));
  await page.goto(`${url}/#/vms/${vm}`);
}

/** The Firewall page (security groups): the default group with its rule; a group made; a bad
 *  CIDR's message at its field; a rule added, shown as the API words it, removed; the group
 *  deleted; the default group, on the VM's NIC (nicChecks), cannot be (the 409 names the VM). */
async function securityGroupChecks(page, networked) {
  console.log("== the Firewall page (security groups)");
  await page.goto(`${url}/#/security-groups`);
  check("the default group is listed with its rule",
    await until(page, () => /in any from group default/.test(document.querySelector("[data-group=default] table.rules")?.textContent ?? ""), 10000));
  await page.type(".group-form [data-field=name] input", "web");
  await page.type(".group-form [data-field=description] input", "web servers");
  await page.click(".group-form button[type=submit]");
  check("a group made: its card, with no rules",
    await until(page, () => /No rules/.test(document.querySelector("[data-group=web] table.rules")?.textContent ?? ""), 10000),
    await page.$eval("main .status", (e) => e.textContent));
  const form = "[data-group=web] .rule-form";
  await page.select(`${form} [data-field=protocol] select`, "tcp");
  await page.type(`${form} [data-field=port_from] input`, "22");
  await page.type(`${form} [data-field=remote_cidr] input`, "10.0.0.0/33");
  await page.click(`${form} button[type=submit]`);
  check("  ... a bad CIDR: the API's message at its field",
    await until(page, (form) => document.querySelector(`${form} [data-field=remote_cidr] .field-error`)?.textContent !== "", 10000, form),
    await page.$eval("main .status", (e) => e.textContent));
  await retype(page, `${form} [data-field=remote_cidr] input`, "10.0.0.0/8");
  await page.click(`${form} button[type=submit]`);
  check("  ... a rule added, worded as the API words it",
    await until(page, () => document.querySelector("[data-group=web] tr[data-rule='0']")?.textContent.includes("in tcp 22 from 10.0.0.0/8"), 10000),
    await page.$eval("main .status", (e) => e.textContent));
  await shot(page, "security-groups");
  await page.click("[data-group=web] tr[data-rule='0'] [data-action=delete-rule]");
  check("  ... and removed", await until(page, () => /No rules/.test(document.querySelector("[data-group=web] table.rules")?.textContent ?? ""), 10000));
  await page.click("[data-group=web] [data-action=delete-group]");
  check("  ... the group deleted", await until(page, () => !document.querySelector("[data-group=web]"), 10000));
  if (networked) {
    await page.click("[data-group=default] [data-action=delete-group]");
    check("deleting the default group, on the VM's NIC: the 409's message names the VM",
      await until(page, (name) => new RegExp(`delete default: .*${name}`).test(document.querySelector("main .status")?.textContent ?? ""), 10000, vm),
      await page.$eval("main .status", (e) => e.textContent));
  }
}

/** The Alarms page: a rule on the running VM's memory (above 1 byte: it fires at the next sample);
 *  a bad for_seconds' message at its field; the rule firing with the VM and its value, live; deleted. */
async function alarmChecks(page) {
  console.log("== the Alarms page");
  await page.goto(`${url}/#/alarms`);
  check("no alarms yet", await until(page, () => /No alarms yet/.test(document.querySelector("table.alarms tbody")?.textContent ?? ""), 10000));
  const form = ".alarm-form";
  await page.type(`${form} [data-field=name] input`, "big");
  await page.select(`${form} [data-field=metric] select`, "vm.memory");
  await page.type(`${form} [data-field=vm] input`, vm);
  await page.type(`${form} [data-field=above] input`, "1");
  await page.type(`${form} [data-field=webhook] input`, "ftp://127.0.0.1/hook");
  await page.click(`${form} button[type=submit]`);
  check("a webhook that is not http(s): the API's message at its field",
    await until(page, (form) => /http/.test(document.querySelector(`${form} [data-field=webhook] .field-error`)?.textContent ?? ""), 10000, form),
    await page.$eval("main .status", (e) => e.textContent));
  await retype(page, `${form} [data-field=webhook] input`, "");
  await page.click(`${form} button[type=submit]`);
  check("  ... fixed: the alarm is listed with its rule",
    await until(page, (name) => document.querySelector("tr[data-alarm=big] code")?.textContent === `vm.memory of ${name} above 1`, 10000, vm),
    await page.$eval("main .status", (e) => e.textContent));
  check("  ... and fires at the next sample, naming the VM and its memory in MiB",
    await until(page, (name) => {
      const target = document.querySelector(`tr[data-alarm=big][data-state=firing] li[data-target="${name}"][data-state=firing]`);
      return /\d+\.\d MiB/.test(target?.querySelector(".alarm-value")?.textContent ?? "");
    }, 20000, vm), await page.$eval("table.alarms tbody", (e) => e.textContent));
  await shot(page, "alarms");
  await page.click("tr[data-alarm=big] [data-action=delete-alarm]");
  check("  ... deleted", await until(page, () => !document.querySelector("tr[data-alarm=big]"), 10000));
}

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
  const network = watchNetwork(page);
  const code = watchCode(page);

  console.log("== sign in");
  const started = Date.now();
  await page.goto(url, { waitUntil: "load" });
  // Loaded once more when the form does not come: CI saw it missing once, with no trace of why
  // (the report below says it now); a second miss fails.
  let formShown = await until(page, () => document.querySelector("#token"), 30000);
  if (!formShown) {
    console.log(`NOTE: no sign-in form 30 s after the first load; loading again (${await network.report(pageErrors)})`);
    await page.reload({ waitUntil: "load" });
    formShown = await until(page, () => document.querySelector("#token"), 30000);
  }
  check("the sign-in form appears", formShown, await network.report(pageErrors));
  const interactive = Date.now() - started;
  check("every request stayed on corrald (no CDN)", requests.every((each) => each.startsWith(url)), requests.join(" "));
  const firstPageRequests = requests.length;
  // xterm.js and uPlot are chunks loaded by the pages with a console or charts (web/src/lazy.ts).
  const signInCode = await code.loaded();
  check("the sign-in page loads neither xterm.js nor uPlot (in none of its scripts and style sheets)",
    signInCode.length >= 2 && signInCode.every((each) => each.has.length === 0 && !each.error), JSON.stringify(signInCode));
  await shot(page, "signin");
  // Tried again when no message comes: a submit the browser made itself would not be the UI's
  // (the form comes with the script, which takes its submits; were one to slip through, the form
  // posts to / and corrald answers 405: the page is loaded again).
  let refused = false;
  for (let attempt = 0; attempt < 3 && !refused; attempt++) {
    if (!(await until(page, () => document.querySelector("#token"), 10000))) {
      await page.goto(url, { waitUntil: "load" });
      await until(page, () => document.querySelector("#token"), 10000);
    }
    await page.$eval("#token", (input) => (input.value = ""));
    await page.type("#token", "corral_wrong");
    await page.click("form button[type=submit]");
    refused = await until(page, () => /not valid/.test(document.querySelector("#token-error")?.textContent ?? ""), 10000);
  }
  check("a wrong token: the API's message at the token field", refused);
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
  // The screen's checks need corrald's VNC relay (issue 16); a corrald without it knows no display.
  const screenServed = await page.evaluate(async () =>
    "/api/v1/vms/{name}/vnc" in ((await (await fetch("/api/v1/openapi.json")).json()).paths ?? {}));
  if (screenServed) await page.select("[data-field=display] select", "1024x768");
  else console.log("SKIP: the screen's checks (this corrald does not serve /api/v1/vms/{name}/vnc)");
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

  if (screenServed) await screenChecks(page);

  check("the charts have data points",
    await until(page, () => [...document.querySelectorAll("figure.chart")].every((f) => Number(f.dataset.points) >= 2), 30000),
    await page.$$eval("figure.chart", (figures) => figures.map((f) => f.dataset.points).join(",")));
  check("  ... and the CPU chart drew its line (a uPlot canvas)", (await page.$$("figure.chart canvas")).length >= 4);
  const vmCode = await code.loaded();
  const chunks = [...withLibrary(vmCode, "xterm"), ...withLibrary(vmCode, "uPlot")];
  check("  ... xterm.js and uPlot came in chunks of their own, apart from the main bundle, gzipped (the build's twins)",
    withLibrary(vmCode, "xterm").length === 1 && withLibrary(vmCode, "uPlot").length === 1 &&
    !chunks.some((chunk) => signInCode.some((each) => each.url === chunk)) &&
    vmCode.filter((each) => chunks.includes(each.url)).every((each) => each.encoding === "gzip"), JSON.stringify(vmCode));
  await chunkFailureChecks(vm, chunks);
  // The "why is it slow" panel (web/src/pages/slow.ts): corrald's four verdicts with plausible
  // figures: shares of vCPU time in 0..100%, and a read latency above 0 ms (the guest read its
  // root disk while it booted, within the panel's five minutes).
  const slowFigures = () => page.$$eval(".slow li[data-cause]", (items) =>
    Object.fromEntries(items.map((li) => [li.dataset.cause, li.querySelector(".slow-figure")?.textContent ?? ""])));
  check("the \"why is it slow\" panel lists its four causes, each with a verdict",
    await until(page, () => document.querySelectorAll(".slow li[data-cause] .slow-verdict").length === 4, 30000),
    await page.$eval(".slow", (e) => e.textContent));
  check("  ... waiting for a host CPU: a share of its vCPU time in 0..100%",
    await until(page, () => {
      const figure = document.querySelector(".slow li[data-cause=cpu_wait] .slow-figure")?.textContent ?? "";
      return /^\d+(\.\d+)?%$/.test(figure) && parseFloat(figure) <= 100;
    }, 30000), JSON.stringify(await slowFigures()));
  check("  ... disk reads: a latency above 0 ms",
    await until(page, () => parseFloat(document.querySelector(".slow li[data-cause=disk_read] .slow-figure")?.textContent ?? "") > 0,
      30000), JSON.stringify(await slowFigures()));
  check("  ... no CPU cap: its verdict says so", await page.$eval(".slow li[data-cause=cpu_cap] .slow-verdict",
    (e) => e.textContent === "it has no CPU cap"));
  await balloonChecks(page, vm);
  await shot(page, "vm");
  await migrateChecks(page);   // before the snapshots: a VM with snapshots does not migrate yet
  await realMigrationChecks(page);
  await page.goto(`${url}/#/vms/${vm}`);
  await until(page, () => document.querySelector("[data-tab=snapshots]"), 10000);
  const networked = await page.evaluate(async () =>
    (await (await fetch("/api/v1/networks")).json()).some((network) => network.name === "default"));
  await snapshotChecks(page);
  if (networked) await nicChecks(page);
  else console.log("SKIP: the NIC checks (no default network: not in a network namespace of the test's own)");

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
  await storageChecks(page);
  await networkChecks(page, networked);
  await securityGroupChecks(page, networked);
  await alarmChecks(page);
  await page.goto(`${url}/#/tokens`);
  check("the Tokens page shows who this session signed in as",
    await until(page, () => document.querySelector(".signed-in-as")?.textContent === "browser", 10000));
  await shot(page, "tokens");
  await page.setViewport({ width: 390, height: 844, isMobile: true });
  await page.goto(`${url}/#/vms`);
  await until(page, (name) => document.querySelector(`tr[data-vm="${name}"]`), 10000, vm);
  check("at phone width nothing scrolls sideways",
    await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1),
    String(await page.evaluate(() => document.documentElement.scrollWidth)));
  await shot(page, "vms-phone");
  for (const [hash, what, ready] of [["#/networks", "the Networks page", "table.networks tbody tr"],
    [`#/vms/${vm}`, "the VM's page (its Snapshots tab)", "tr[data-snapshot]"], ["#/storage", "the Storage page", "tr[data-volume]"],
    ["#/backups", "the Backups page", "table.repositories tbody tr"], ["#/security-groups", "the Firewall page", "[data-group=default]"],
    ["#/alarms", "the Alarms page", "table.alarms tbody tr"]]) {
    await page.goto(`${url}/${hash}`);
    await until(page, (selector) => document.querySelector(selector), 10000, ready);
    check(`  ... nor does ${what}`, await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1),
      String(await page.evaluate(() => document.documentElement.scrollWidth)));
  }
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
  await restoreChecks(page);
  await backupChecks(page);
  // The button itself, enabled: "not disabled" alone is also true before the page has drawn it.
  await until(page, () => document.querySelector("button[data-action=delete]:not([disabled])"), 10000);
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
  // Were the browser to submit the sign-in form itself (without the script's listener: a copy of
  // the form has none), the token must not end up in the address (a form's default is GET ?token=).
  await until(page, () => document.querySelector("form.signin"), 10000);
  await Promise.all([page.waitForNavigation({ waitUntil: "load", timeout: 10000 }), page.evaluate(() => {
    const form = document.querySelector("form.signin");
    const copy = form.cloneNode(true);
    copy.querySelector("#token").value = "corral_native_submit";
    form.replaceWith(copy);
    copy.requestSubmit();
  })]);
  check("the sign-in form submitted by the browser itself keeps the token out of the address",
    !page.url().includes("corral_native_submit"), page.url());
  console.log(`MEASURED: sign-in form interactive ${interactive} ms after navigation, ${firstPageRequests} requests; ` +
    `dashboard ready ${dashboardReady} ms after signing in`);
} catch (error) {
  check(`the scenario ran to its end`, false, String(error?.stack ?? error));
} finally {
  await browser.close();
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
