// Builds the web UI into OUT (default dist/): index.html and assets/ with content-hashed names
// (corrald caches those for a year). Run by the build (CMake target web_ui) after `tsc --noEmit`;
// needs only what `npm ci` installed, no network.
import * as esbuild from "esbuild";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";

const out = process.argv[2] ?? "dist";
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });
const result = await esbuild.build({
  entryPoints: { main: "src/main.ts" },
  bundle: true,
  minify: true,
  format: "esm",
  target: ["chrome109", "firefox115", "safari16"],
  outdir: join(out, "assets"),
  entryNames: "[name]-[hash]",
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
});
const outputs = Object.keys(result.metafile.outputs).map((file) => basename(file));
const script = outputs.find((file) => file.endsWith(".js"));
const style = outputs.find((file) => file.endsWith(".css"));
const page = readFileSync("src/index.html", "utf8")
  .replace("{{script}}", `/ui/assets/${script}`)
  .replace("{{style}}", `/ui/assets/${style}`);
writeFileSync(join(out, "index.html"), page);
console.log(`web UI: ${out}/index.html, assets/${script}, assets/${style}`);
