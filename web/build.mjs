// Builds the web UI into OUT (default dist/): index.html and assets/ with content-hashed names
// (corrald caches those for a year). Run by the build (CMake target web_ui) after `tsc --noEmit`;
// needs only what `npm ci` installed, no network.
import * as esbuild from "esbuild";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { constants, gzipSync } from "node:zlib";

const out = process.argv[2] ?? "dist";
rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "assets"), { recursive: true });
const result = await esbuild.build({
  entryPoints: { main: "src/main.ts" },
  bundle: true,
  minify: true,
  format: "esm",
  // Code that only some pages need (noVNC) goes into chunks loaded by import() when used.
  splitting: true,
  target: ["chrome109", "firefox115", "safari16"],
  outdir: join(out, "assets"),
  entryNames: "[name]-[hash]",
  chunkNames: "[name]-[hash]",
  metafile: true,
  legalComments: "linked",
  logLevel: "warning",
});
const entry = Object.entries(result.metafile.outputs).find(([, output]) => output.entryPoint === "src/main.ts");
const script = basename(entry[0]);
const style = basename(entry[1].cssBundle);
const page = readFileSync("src/index.html", "utf8")
  .replace("{{script}}", `/ui/assets/${script}`)
  .replace("{{style}}", `/ui/assets/${style}`);
writeFileSync(join(out, "index.html"), page);
// Precompressed twins (NAME.gz) that corrald sends a browser accepting gzip: compressed once here
// at the strongest level instead of per request (the bundle is about a quarter of its size gzipped).
for (const entry of readdirSync(out, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || !/\.(js|css|html)$/.test(entry.name)) continue;
  const file = join(entry.parentPath ?? entry.path, entry.name);
  const raw = readFileSync(file);
  const packed = gzipSync(raw, { level: constants.Z_BEST_COMPRESSION });
  if (packed.length < raw.length) writeFileSync(`${file}.gz`, packed);
}
console.log(`web UI: ${out}/index.html, assets/${script}, assets/${style}`);
